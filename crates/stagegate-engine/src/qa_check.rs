//! The main agent's verdict, and the engine's own structural checks beside it.

use crate::event::Verdict;
use crate::prompt::NamedText;

/// Reads the `VERDICT: PASS` / `VERDICT: REWORK` line (the last one counts) and the feedback
/// above it. An output without a verdict line is a REWORK: QA must say PASS to pass.
pub fn parse_verdict(output: &str) -> (Verdict, String) {
    let lines: Vec<&str> = output.lines().collect();
    let found = lines.iter().enumerate().rev().find_map(|(index, line)| {
        let value = line
            .trim()
            .trim_matches('`')
            .trim()
            .strip_prefix("VERDICT:")?;
        let verdict = match value.trim().to_ascii_uppercase().as_str() {
            "PASS" => Verdict::Pass,
            "REWORK" => Verdict::Rework,
            _ => return None,
        };
        Some((index, verdict))
    });
    match found {
        Some((index, verdict)) => (verdict, lines[..index].join("\n").trim().to_owned()),
        None => (
            Verdict::Rework,
            format!(
                "{}\n\nQA gave no `VERDICT: PASS` or `VERDICT: REWORK` line.",
                output.trim()
            )
            .trim()
            .to_owned(),
        ),
    }
}

/// Problems the engine finds by itself: required artifacts that are missing or empty.
pub fn structural_problems(required: &[String], artifacts: &[NamedText]) -> Vec<String> {
    required
        .iter()
        .filter_map(
            |name| match artifacts.iter().find(|artifact| &artifact.name == name) {
                None => Some(format!("required artifact {name} was not written")),
                Some(artifact) if artifact.content.trim().is_empty() => {
                    Some(format!("required artifact {name} is empty"))
                }
                Some(_) => None,
            },
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_verdict_line_counts_and_the_text_above_is_feedback() {
        let (verdict, feedback) = parse_verdict("Missing FR-003.\nVERDICT: REWORK\n");
        assert_eq!(verdict, Verdict::Rework);
        assert_eq!(feedback, "Missing FR-003.");
        let (verdict, _) = parse_verdict("VERDICT: REWORK\nfixed\n`VERDICT: pass`");
        assert_eq!(verdict, Verdict::Pass);
    }

    #[test]
    fn no_verdict_line_means_rework() {
        let (verdict, feedback) = parse_verdict("looks fine");
        assert_eq!(verdict, Verdict::Rework);
        assert!(feedback.contains("no `VERDICT"), "{feedback}");
    }

    #[test]
    fn missing_and_empty_required_artifacts_are_problems() {
        let required = vec!["plan.md".to_owned(), "planning-summary.md".to_owned()];
        let artifacts = vec![NamedText {
            name: "plan.md".into(),
            content: "  \n".into(),
        }];
        assert_eq!(
            structural_problems(&required, &artifacts),
            vec![
                "required artifact plan.md is empty".to_owned(),
                "required artifact planning-summary.md was not written".to_owned()
            ]
        );
    }
}
