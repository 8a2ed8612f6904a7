//! Pieces every analyst's markdown shares: the heading line, the open questions carried
//! forward, and the notes on what could not be read.

use crate::analysts::Call;
use crate::markdown;
use crate::speckit::Feature;

/// `# <title>: <feature>` and a line saying who wrote it from which inputs.
pub(crate) fn header(call: &Call<'_>, title: &str) -> String {
    let inputs: Vec<String> = call
        .feature
        .texts
        .iter()
        .map(|file| format!("`{}`", file.name))
        .collect();
    let inputs = if inputs.is_empty() {
        "no feature files".to_owned()
    } else {
        inputs.join(", ")
    };
    let stage = &call.materials().stage_name;
    let stage = if stage.is_empty() {
        call.request.identity.stage.clone()
    } else {
        stage.clone()
    };
    format!(
        "# {title}: {feature}\n\n_{role} (`{agent}`, built-in analyst) for {stage}; read {inputs}._\n\n",
        feature = call.feature.name,
        role = call.role(),
        agent = call.agent(),
    )
}

/// `## Open Questions`: every `[NEEDS CLARIFICATION]` with what it blocks. Always written,
/// so that a reader sees "none" rather than wondering.
pub(crate) fn open_questions(feature: &Feature, heading: &str) -> String {
    let mut out = format!("## {heading}\n\n");
    if feature.spec.open_questions.is_empty() {
        out.push_str("None: the spec has no `[NEEDS CLARIFICATION]` markers.\n\n");
        return out;
    }
    let rows: Vec<Vec<String>> = feature
        .spec
        .open_questions
        .iter()
        .enumerate()
        .map(|(index, question)| {
            vec![
                format!("Q{}", index + 1),
                format!("NEEDS CLARIFICATION: {}", question.question),
                question.location.clone(),
                format!("spec.md:{}", question.line),
            ]
        })
        .collect();
    markdown::table(&mut out, &["#", "Question", "Blocks", "Where"], &rows);
    out.push('\n');
    out
}

/// `## Reading Notes`: what could not be read (nothing when everything could).
pub(crate) fn reading_notes(feature: &Feature) -> String {
    let notes = feature.notes();
    if notes.is_empty() {
        return String::new();
    }
    let mut out = String::from("## Reading Notes\n\nUnreadable or missing in the inputs:\n\n");
    for note in notes {
        out.push_str(&format!("- {note}\n"));
    }
    out.push('\n');
    out
}

/// A bullet list, or `fallback` as a sentence when there is nothing to list.
pub(crate) fn bullets(items: &[String], fallback: &str) -> String {
    if items.is_empty() {
        return format!("{fallback}\n\n");
    }
    let mut out = String::new();
    for item in items {
        out.push_str(&format!("- {item}\n"));
    }
    out.push('\n');
    out
}
