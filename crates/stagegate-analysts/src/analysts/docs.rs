//! `docs-engineer`: the documentation plan — usage per story, worked examples from the
//! acceptance scenarios, migration notes for existing users, and what to document once the
//! open questions are answered.

use crate::analysts::confidence::Confidence;
use crate::analysts::{Call, report};
use crate::text;

pub(crate) fn analyze(call: &Call<'_>) -> String {
    let feature = &call.feature;
    let spec = &feature.spec;
    let mut out = report::header(call, "Documentation Plan");
    out.push_str("## Usage\n\n");
    let usage: Vec<String> = spec
        .stories
        .iter()
        .map(|story| {
            format!(
                "How to {}: {}",
                story.title.to_lowercase(),
                text::truncate(&story.narrative, 200)
            )
        })
        .collect();
    out.push_str(&report::bullets(&usage, "No stories to document."));
    out.push_str("## Examples\n\n");
    let mut examples = Vec::new();
    for story in &spec.stories {
        if let Some(scenario) = story.scenarios.first() {
            if scenario.is_complete() {
                examples.push(format!(
                    "{}: starting from {}, when {}, the user sees that {}.",
                    story.label(),
                    scenario.given,
                    scenario.when,
                    scenario.then.trim_end_matches('.')
                ));
            } else {
                examples.push(format!("{}: {}", story.label(), scenario.text));
            }
        }
    }
    out.push_str(&report::bullets(
        &examples,
        "No acceptance scenarios to turn into worked examples.",
    ));
    out.push_str("## Limits and Rules to Document\n\n");
    let limits: Vec<String> = spec
        .requirements
        .iter()
        .filter(|requirement| text::has_number(&requirement.text))
        .map(|requirement| {
            format!(
                "{}: {}",
                requirement.id,
                text::truncate(&requirement.text, 160)
            )
        })
        .collect();
    out.push_str(&report::bullets(&limits, "No numeric limits to document."));
    out.push_str("## Migration Notes\n\n");
    let mut notes: Vec<String> = spec
        .assumptions
        .iter()
        .filter(|assumption| {
            let lower = assumption.text.to_lowercase();
            ["existing", "later", "out of scope", "version", "no "]
                .iter()
                .any(|word| lower.contains(word))
        })
        .map(|assumption| assumption.text.clone())
        .collect();
    notes.push("Existing users: describe what changes for them on upgrade and whether any data is migrated; say so explicitly when nothing changes.".to_owned());
    out.push_str(&report::bullets(&notes, ""));
    out.push_str(&report::open_questions(
        feature,
        "Open Questions (document once answered)",
    ));
    out.push_str(&report::reading_notes(feature));
    out.push_str(&Confidence::for_feature(feature).render());
    out
}
