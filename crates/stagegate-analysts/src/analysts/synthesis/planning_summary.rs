//! `planning-summary.md`: the one page a person reads at the plan gate — Problem → Solution →
//! Implementation in short, the decisions, the top risks, the open questions and the scores.

use crate::analysts::risk::Severity;
use crate::analysts::synthesis::sources;
use crate::analysts::{Call, architecture, estimation, report, risk};
use crate::scores;
use crate::text;

pub(crate) fn write(call: &Call<'_>) -> String {
    let feature = &call.feature;
    let spec = &feature.spec;
    let mut out = format!("# Planning Summary: {}\n\n", feature.name);
    out.push_str("## Problem\n\n");
    out.push_str(&format!(
        "{}\n\n",
        spec.description
            .as_deref()
            .map(|description| text::truncate(description, 600))
            .unwrap_or_else(|| "The spec states no problem description.".to_owned())
    ));
    let stories: Vec<String> = spec
        .stories
        .iter()
        .map(|story| {
            format!(
                "{} (P{}): {}",
                story.label(),
                story
                    .priority
                    .map_or("?".to_owned(), |priority| priority.to_string()),
                story.title
            )
        })
        .collect();
    out.push_str(&report::bullets(&stories, "No user stories were found."));

    out.push_str("## Solution\n\n");
    let decisions: Vec<String> = architecture::alternatives(feature)
        .iter()
        .map(|alternative| {
            format!(
                "{}: {} (raised by {})",
                alternative.topic, alternative.choice, alternative.raised_by
            )
        })
        .collect();
    out.push_str(&report::bullets(&decisions, ""));

    out.push_str("## Implementation\n\n");
    let phases: Vec<String> = estimation::phases(spec)
        .iter()
        .map(|phase| {
            format!(
                "{} — {}{}",
                phase.name,
                phase.size,
                if phase.requirements.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", phase.requirements.join(", "))
                }
            )
        })
        .collect();
    out.push_str(&report::bullets(&phases, ""));
    out.push_str(&format!(
        "Requirements: {} functional, {} success criteria; all traced in plan.md.\n\n",
        spec.requirements.len(),
        spec.success_criteria.len()
    ));

    out.push_str("## Key Risks\n\n");
    let risks: Vec<String> = risk::risks(spec)
        .iter()
        .filter(|risk| risk.severity <= Severity::High)
        .map(|risk| {
            format!(
                "{} {}: {}",
                risk.severity.as_str(),
                risk.category,
                risk.mitigation
            )
        })
        .collect();
    out.push_str(&report::bullets(&risks, "No HIGH or CRITICAL risks."));

    out.push_str(&report::open_questions(feature, "Open Questions"));

    out.push_str("## Scores\n\n");
    let scores = scores::scores_for(scores::ScoreInputs::from_feature(feature));
    out.push_str(&format!(
        "- Complexity: {}\n- Uncertainty: {}\n\n",
        scores::explain(&scores.complexity),
        scores::explain(&scores.uncertainty)
    ));
    out.push_str(&sources(call));
    out
}
