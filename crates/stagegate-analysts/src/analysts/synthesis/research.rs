//! `research.md`: one decision per open `[NEEDS CLARIFICATION]` (a provisional choice until it
//! is answered) and one per architecture choice, each with its rationale and alternatives.

use crate::analysts::synthesis::sources;
use crate::analysts::{Call, architecture};
use crate::text;

/// Options named in a question: "in-app only, email, or both?" → `["in-app only", "email",
/// "both"]`.
pub(crate) fn options(question: &str) -> Vec<String> {
    let body = question
        .rsplit_once(" - ")
        .map_or(question, |(_, rest)| rest)
        .trim_end_matches(['?', '.', ' ']);
    let parts: Vec<String> = body
        .split(',')
        .flat_map(|part| part.split(" or "))
        .map(|part| part.trim().trim_start_matches("or ").trim().to_owned())
        .filter(|part| !part.is_empty() && part.split_whitespace().count() <= 5)
        .collect();
    if parts.len() >= 2 { parts } else { Vec::new() }
}

pub(crate) fn write(call: &Call<'_>) -> String {
    let feature = &call.feature;
    let spec = &feature.spec;
    let mut out = format!("# Research: {}\n\n", feature.name);
    out.push_str("## Open Questions\n\n");
    if spec.open_questions.is_empty() {
        out.push_str("None: the spec has no `[NEEDS CLARIFICATION]` markers.\n\n");
    }
    for (index, question) in spec.open_questions.iter().enumerate() {
        let options = options(&question.question);
        out.push_str(&format!(
            "### Q{}: {} ({})\n\n",
            index + 1,
            text::truncate(&question.question, 120),
            question.location
        ));
        out.push_str(&format!(
            "- **Question**: NEEDS CLARIFICATION: {}\n",
            question.question
        ));
        if options.is_empty() {
            out.push_str("- **Decision**: NEEDS CLARIFICATION — the spec gives no options\n\n");
        } else {
            out.push_str(&format!(
                "- **Decision**: NEEDS CLARIFICATION — the options the spec states: {}\n\n",
                options.join("; ")
            ));
        }
    }
    out.push_str("## Architecture Decisions\n\n");
    for alternative in architecture::alternatives(feature) {
        out.push_str(&format!("### {}\n\n", alternative.topic));
        out.push_str(&format!("- **Decision**: {}\n", alternative.choice));
        out.push_str(&format!("- **Raised by**: {}\n", alternative.raised_by));
        out.push_str(&format!("- **To weigh**: {}\n", alternative.trade_off));
        out.push_str(&format!(
            "- **Alternatives considered**: {}\n\n",
            alternative.options
        ));
    }
    out.push_str(&sources(call));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_read_from_questions() {
        assert_eq!(
            options("notification channel not specified - in-app only, email, or both?"),
            vec!["in-app only", "email", "both"]
        );
        assert!(options("retention period for deleted albums not specified").is_empty());
    }
}
