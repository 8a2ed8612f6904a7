//! `requirements-analyst`: objectives, a traceability table (every FR and SC → the stories
//! that mention its key words → their acceptance scenarios), dependencies, constraints,
//! success metrics, and every open `[NEEDS CLARIFICATION]` with the requirement it blocks.

use crate::analysts::confidence::Confidence;
use crate::analysts::{Call, report, traceability};
use crate::markdown;
use crate::speckit::{Feature, Spec};
use crate::text;

pub(crate) fn analyze(call: &Call<'_>) -> String {
    let feature = &call.feature;
    let spec = &feature.spec;
    let mut out = report::header(call, "Requirements Analysis");
    out.push_str(&objectives(feature));

    out.push_str("## Requirements Traceability\n\n");
    let traces = traceability::trace(spec);
    let untraced = traces
        .iter()
        .filter(|trace| trace.stories.is_empty())
        .count();
    if traces.is_empty() {
        out.push_str("No `FR-###` or `SC-###` requirements were found to trace.\n\n");
    } else {
        let rows: Vec<Vec<String>> = traces
            .iter()
            .map(|trace| {
                let stories: Vec<String> = trace
                    .stories
                    .iter()
                    .map(|story| match story.priority {
                        Some(priority) => format!("{} (P{priority})", story.label()),
                        None => story.label(),
                    })
                    .collect();
                vec![
                    trace.requirement.id.clone(),
                    text::summary(&trace.requirement.text, 90),
                    if stories.is_empty() {
                        "untraced: no story mentions its key words".to_owned()
                    } else {
                        stories.join(", ")
                    },
                    trace.scenarios.join(", "),
                    trace.words.join(", "),
                ]
            })
            .collect();
        markdown::table(
            &mut out,
            &[
                "Requirement",
                "Summary",
                "Stories",
                "Acceptance scenarios",
                "Shared key words",
            ],
            &rows,
        );
        out.push_str(&format!(
            "\n{} of {} requirements traced to a story; scenario labels are `US<story>-AS<n>`.\n\n",
            traces.len() - untraced,
            traces.len()
        ));
    }

    out.push_str("## Success Metrics\n\n");
    if spec.success_criteria.is_empty() {
        out.push_str("No `SC-###` success criteria: add measurable outcomes to the spec.\n\n");
    } else {
        let rows: Vec<Vec<String>> = spec
            .success_criteria
            .iter()
            .map(|criterion| {
                let measurable = if text::has_number(&criterion.text) {
                    "yes".to_owned()
                } else {
                    "no: states no number".to_owned()
                };
                vec![
                    criterion.id.clone(),
                    text::truncate(&criterion.text, 110),
                    measurable,
                    related_requirements(spec, &criterion.text).join(", "),
                ]
            })
            .collect();
        markdown::table(
            &mut out,
            &["Criterion", "Metric", "Measurable", "Related requirements"],
            &rows,
        );
        out.push('\n');
    }

    out.push_str("## Dependencies\n\n");
    out.push_str(&report::bullets(
        &dependencies(spec),
        "No dependencies between stories or on outside systems were found.",
    ));

    out.push_str("## Constraints\n\n");
    out.push_str(&report::bullets(
        &constraints(spec),
        "No numeric limits or scope exclusions were stated.",
    ));

    out.push_str(&report::open_questions(feature, "Open Questions"));
    out.push_str(&report::reading_notes(feature));

    let mut confidence = Confidence::for_feature(feature);
    confidence.subtract(
        (0.02 * untraced as f64).min(0.10),
        format!("{untraced} untraced requirement(s)"),
    );
    out.push_str(&confidence.render());
    out
}

/// `## Objectives`: one per story, by priority.
fn objectives(feature: &Feature) -> String {
    let spec = &feature.spec;
    let mut out = String::from("## Objectives\n\n");
    if let Some(description) = &spec.description {
        out.push_str(&format!(
            "Feature request: \"{}\"\n\n",
            text::truncate(description, 400)
        ));
    }
    let mut stories: Vec<_> = spec.stories.iter().collect();
    stories.sort_by_key(|story| (story.priority.unwrap_or(u32::MAX), story.number));
    if stories.is_empty() {
        out.push_str("No user stories to derive objectives from.\n\n");
        return out;
    }
    for story in stories {
        let priority = story
            .priority
            .map_or("unprioritized".to_owned(), |priority| {
                format!("P{priority}")
            });
        out.push_str(&format!(
            "{}. **{} ({priority})**: {}",
            story.number,
            story.title,
            text::truncate(first_sentence(&story.narrative), 240)
        ));
        if let Some(test) = &story.independent_test {
            out.push_str(&format!(" Verified by: {}", text::truncate(test, 200)));
        }
        out.push('\n');
    }
    out.push('\n');
    out
}

pub(crate) fn first_sentence(text: &str) -> &str {
    match text.find(". ") {
        Some(at) => &text[..=at],
        None => text,
    }
}

/// FR ids sharing at least two key words with `text`.
pub(crate) fn related_requirements(spec: &Spec, text: &str) -> Vec<String> {
    let words = text::keywords(text);
    spec.requirements
        .iter()
        .filter(|requirement| {
            text::keywords(&requirement.text)
                .intersection(&words)
                .count()
                >= 2
        })
        .map(|requirement| requirement.id.clone())
        .take(6)
        .collect()
}

/// Story-to-story dependencies (a lower-priority story naming what a higher one creates) and
/// outside dependencies named by assumptions.
fn dependencies(spec: &Spec) -> Vec<String> {
    let mut found = Vec::new();
    for story in &spec.stories {
        let why = story.why_priority.as_deref().unwrap_or("").to_lowercase();
        if why.contains("depend") || why.contains("require") || why.contains("after") {
            let words = text::keywords(&why);
            let earlier: Vec<String> = spec
                .stories
                .iter()
                .filter(|other| other.priority < story.priority && other.number != story.number)
                .filter(|other| text::keywords(&other.title).intersection(&words).count() >= 1)
                .map(|other| other.label())
                .collect();
            if !earlier.is_empty() {
                found.push(format!(
                    "{} depends on {}: \"{}\"",
                    story.label(),
                    earlier.join(", "),
                    text::truncate(story.why_priority.as_deref().unwrap_or(""), 160)
                ));
            }
        }
    }
    for assumption in &spec.assumptions {
        let lower = assumption.text.to_lowercase();
        if [
            "existing",
            "already",
            "relies",
            "provided by",
            "third-party",
            "external",
        ]
        .iter()
        .any(|word| lower.contains(word))
        {
            found.push(format!(
                "Outside dependency (assumption): {}",
                assumption.text
            ));
        }
    }
    found
}

/// Requirements stating numeric limits, and assumptions excluding scope.
fn constraints(spec: &Spec) -> Vec<String> {
    let mut found = Vec::new();
    for requirement in &spec.requirements {
        if text::has_number(&requirement.text) {
            found.push(format!(
                "{}: {}",
                requirement.id,
                text::truncate(&requirement.text, 160)
            ));
        }
    }
    for assumption in &spec.assumptions {
        let lower = assumption.text.to_lowercase();
        if lower.contains("out of scope") || lower.contains("later") || lower.contains("only") {
            found.push(format!("Scope: {}", assumption.text));
        }
    }
    found
}
