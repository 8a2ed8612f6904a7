//! The synthesizers: one writer per artifact name, whoever the synthesizer is (a user's own
//! stage reusing `lead-synthesizer-c` still gets its `quality_report.md`). Unknown artifacts
//! get a structured document combining the outputs and the review; directory artifacts
//! (`contracts/`, `test_fixtures/`) are skipped, as the engine allows for optional artifacts.
//!
//! The writers recompute from the spec what the role agents derived (the same functions), so
//! an artifact stays complete when an agent failed; they take from the outputs and the review
//! what only those hold (conflicts, gaps, agent confidence) and say which agents contributed.
//!
//! When the project has its own spec-kit template of a markdown artifact (the input
//! `plan-template.md` for `plan.md`), the written document follows the template's headings
//! (see [`template`]); without one, the writers' own layout is kept byte for byte.

mod data_model;
mod feedback_answers;
mod implementation_plan;
mod optional;
mod plan;
mod planning_summary;
mod quality_report;
mod research;
mod tasks;
mod template;

pub(crate) use research::options;

use crate::analysts::{Call, discovery, report};
use crate::markdown::{self, BlockKind};
use crate::speckit::Template;
use crate::speckit::feature::base_name;
use crate::text;

pub(crate) fn write(call: &Call<'_>) -> String {
    let artifact = call
        .materials()
        .artifact
        .clone()
        .or_else(|| call.request.identity.artifact.clone())
        .unwrap_or_default();
    if artifact.ends_with('/') {
        return "SKIP".to_owned();
    }
    let mut out = match base_name(&artifact) {
        "plan.md" => plan::write(call),
        "planning-summary.md" => planning_summary::write(call),
        "research.md" => research::write(call),
        "data-model.md" => data_model::write(call),
        "implementation_plan.md" => implementation_plan::write(call),
        "quality_report.md" => quality_report::write(call),
        "tasks.md" => match tasks::write(call) {
            skip if skip == tasks::SKIP => return skip,
            written => written,
        },
        "coverage_report.html" => return optional::coverage_html(call),
        "security_scan.json" => return optional::security_json(call),
        _ => generic(call, &artifact),
    };
    if artifact.ends_with(".md") {
        out = with_section(out, &assumptions_and_examples(call));
        // The project's own spec-kit template of the artifact, when given, sets the headings
        // (tasks.md is already in the form of spec-kit's tasks template, phases and all).
        if let Some(source) = call
            .feature
            .template(&artifact)
            .filter(|_| base_name(&artifact) != "tasks.md")
        {
            out = template::follow(
                &out,
                &Template::parse(source),
                base_name(&artifact),
                &call.feature.name,
            );
        }
    }
    let revisions = feedback_answers::revisions(call, &out);
    out.push_str(&revisions);
    let answers = feedback_answers::review_comments(call, &out);
    out.push_str(&answers);
    out
}

/// `## Assumptions` and `## Examples` when the synthesis guidance asks for them (uncertain
/// inputs): the spec's own assumptions, the discovery step's (when given), one per open
/// `[NEEDS CLARIFICATION]` and per other unknown; one example per functional requirement.
pub(crate) fn assumptions_and_examples(call: &Call<'_>) -> String {
    let asks = call.asks();
    let mut out = String::new();
    if asks.assumptions {
        out.push_str("## Assumptions\n\n_The inputs are uncertain: every assumption this artifact rests on, stated explicitly. Each holds until the spec or the person at the gate says otherwise; the open questions say what would change it._\n\n");
        out.push_str(&report::bullets(
            &discovery::assumptions_for(call),
            "- None: the spec states no assumptions and has no open questions, vague terms or unmeasured requirements.",
        ));
    }
    if asks.examples {
        out.push_str("## Examples\n\n_One concrete example per functional requirement: its traced acceptance scenario (`US1-AS2`), else one derived from its text (`synthetic`)._\n\n");
        out.push_str(&report::bullets(
            &discovery::examples(&call.feature.spec),
            "- None needed: the spec defines no functional requirements.",
        ));
    }
    out
}

/// `section` placed before the document's `## Sources`, else at its end.
fn with_section(mut document: String, section: &str) -> String {
    if section.is_empty() {
        return document;
    }
    match document.rfind("\n## Sources\n") {
        Some(at) => document.insert_str(at + 1, section),
        None => {
            if !document.is_empty() && !document.ends_with("\n\n") {
                document.push_str(if document.ends_with('\n') {
                    "\n"
                } else {
                    "\n\n"
                });
            }
            document.push_str(section);
        }
    }
    document
}

/// The items (list entries) of a `## heading` section of a markdown text.
pub(crate) fn section_items(source: &str, heading: &str) -> Vec<String> {
    let mut inside = false;
    let mut items = Vec::new();
    for block in markdown::parse(source).blocks {
        match block.kind {
            BlockKind::Heading { level } if level <= 2 => {
                inside = level == 2 && block.text.eq_ignore_ascii_case(heading);
            }
            BlockKind::Item { .. } if inside => items.push(block.text),
            _ => {}
        }
    }
    items
}

/// `## Sources`: which agents contributed, which failed, and the review's conflicts and gaps.
pub(crate) fn sources(call: &Call<'_>) -> String {
    let materials = call.materials();
    let mut out = String::from("## Sources\n\n");
    if materials.outputs.is_empty() && materials.failures.is_empty() {
        out.push_str("Synthesized from the feature files alone (no agent outputs were given).\n\n");
    } else {
        let contributed: Vec<String> = materials
            .outputs
            .iter()
            .map(|output| format!("`{}` ({})", output.agent, output.role))
            .collect();
        if !contributed.is_empty() {
            out.push_str(&format!("Contributions from {}.\n", contributed.join(", ")));
        }
        for failure in &materials.failures {
            out.push_str(&format!(
                "`{}` failed ({}); its part was rebuilt from the spec.\n",
                failure.agent,
                text::truncate(&failure.reason, 100)
            ));
        }
        out.push('\n');
    }
    if let Some(review) = &materials.review {
        let mut notes: Vec<String> = Vec::new();
        for heading in ["Conflicts", "Gaps"] {
            notes.extend(
                section_items(review, heading)
                    .into_iter()
                    .map(|item| format!("{heading}: {item}")),
            );
        }
        if !notes.is_empty() {
            out.push_str("Review notes taken into account:\n\n");
            out.push_str(&report::bullets(&notes, ""));
        }
    }
    out
}

/// An artifact the built-in pipeline does not know: the outputs combined under headings.
fn generic(call: &Call<'_>, artifact: &str) -> String {
    let materials = call.materials();
    let title = artifact.trim_end_matches(".md").replace(['_', '-'], " ");
    let mut out = format!("# {}: {}\n\n", capitalize(&title), call.feature.name);
    if !materials.task.is_empty() {
        out.push_str(&format!("_{}_\n\n", materials.task));
    }
    if let Some(review) = &materials.review {
        let guidance = section_items(review, "Synthesis Guidance");
        if !guidance.is_empty() {
            out.push_str("## Guidance\n\n");
            out.push_str(&report::bullets(&guidance, ""));
        }
    }
    for output in materials.outputs.iter() {
        out.push_str(&format!("## {}\n\n", output.role));
        // The agents' own `#` title and confidence lines are dropped; their sections nest.
        for line in output.output.lines() {
            if line.starts_with("# ")
                || line.starts_with("CONFIDENCE:")
                || line.starts_with("_Confidence basis")
            {
                continue;
            }
            if line.starts_with("## ") {
                out.push('#');
            }
            out.push_str(line);
            out.push('\n');
        }
        out.push('\n');
    }
    out.push_str(&report::open_questions(&call.feature, "Open Questions"));
    out.push_str(&sources(call));
    out
}

fn capitalize(text: &str) -> String {
    let mut characters = text.chars();
    match characters.next() {
        Some(first) => first.to_uppercase().chain(characters).collect(),
        None => String::new(),
    }
}
