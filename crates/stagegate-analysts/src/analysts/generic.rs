//! The fallback role agent for ids the built-in pipeline does not know (a user's own stage):
//! it picks the closest built-in analyst by the words of the role and task, and otherwise
//! writes a structured digest of the feature for the role's task.

use crate::analysts::confidence::Confidence;
use crate::analysts::{Call, discovery, quality_reviewers, report, risk, test_plan, traceability};
use crate::markdown;
use crate::text;

pub(crate) fn analyze(call: &Call<'_>) -> String {
    let words =
        format!("{} {} {}", call.agent(), call.role(), call.materials().task).to_lowercase();
    let has = |needles: &[&str]| needles.iter().any(|needle| words.contains(needle));
    if has(&["discovery", "unknowns"]) {
        return discovery::analyze(call);
    }
    if has(&["threat", "risk", "security", "privacy", "compliance"]) {
        return risk::analyze(call);
    }
    if has(&["test", "qa engineer", "verification"]) {
        return test_plan::analyze(call);
    }
    if has(&["review", "audit", "consisten", "quality"]) {
        return quality_reviewers::completeness(call);
    }
    digest(call)
}

/// A digest of the feature aimed at the role's task.
fn digest(call: &Call<'_>) -> String {
    let feature = &call.feature;
    let spec = &feature.spec;
    let mut out = report::header(call, call.role());
    out.push_str("## Task\n\n");
    let task = &call.materials().task;
    out.push_str(if task.is_empty() {
        "(no task given)"
    } else {
        task
    });
    out.push_str("\n\n## Stories\n\n");
    let stories: Vec<String> = spec
        .stories
        .iter()
        .map(|story| {
            format!(
                "{} (P{}): {} — {} acceptance scenario(s)",
                story.label(),
                story.priority.map_or("?".to_owned(), |p| p.to_string()),
                story.title,
                story.scenarios.len()
            )
        })
        .collect();
    out.push_str(&report::bullets(&stories, "No user stories were found."));
    out.push_str("## Requirements\n\n");
    let traces = traceability::trace(spec);
    if traces.is_empty() {
        out.push_str("No requirements were found.\n\n");
    } else {
        let rows: Vec<Vec<String>> = traces
            .iter()
            .map(|trace| {
                vec![
                    trace.requirement.id.clone(),
                    text::summary(&trace.requirement.text, 100),
                    trace
                        .stories
                        .iter()
                        .map(|story| story.label())
                        .collect::<Vec<_>>()
                        .join(", "),
                ]
            })
            .collect();
        markdown::table(&mut out, &["Requirement", "Summary", "Stories"], &rows);
        out.push('\n');
    }
    out.push_str("## Points for this role\n\n");
    let mut points = Vec::new();
    for risk in risk::risks(spec) {
        points.push(format!(
            "{} ({}): {}",
            risk.category,
            risk.severity.as_str(),
            risk.mitigation
        ));
    }
    out.push_str(&report::bullets(
        &points,
        "Nothing in the spec calls for this role's attention beyond the requirements above.",
    ));
    out.push_str(&report::open_questions(feature, "Open Questions"));
    out.push_str(&report::reading_notes(feature));
    out.push_str(&Confidence::for_feature(feature).render());
    out
}
