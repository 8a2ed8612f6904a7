//! `plan.md` under spec-kit's plan template headings (Summary, Technical Context,
//! Constitution Check, Project Structure, Complexity Tracking), told as Problem → Solution →
//! Implementation, with every requirement traced and every open question carried forward.

use crate::analysts::constitution_check::ConstitutionCheck;
use crate::analysts::core_implementation::{self, LayoutOrigin};
use crate::analysts::synthesis::sources;
use crate::analysts::technical_context::technical_context;
use crate::analysts::{Call, architecture, estimation, report, risk, traceability};
use crate::markdown;
use crate::scores;
use crate::text;

pub(crate) fn write(call: &Call<'_>) -> String {
    let feature = &call.feature;
    let spec = &feature.spec;
    let mut out = format!("# Implementation Plan: {}\n\n", feature.name);
    out.push_str(&format!(
        "**Branch**: `{}` | **Date**: {} | **Spec**: spec.md\n**Input**: Feature specification from spec.md\n\n",
        spec.branch.as_deref().unwrap_or("(not stated)"),
        spec.created.as_deref().unwrap_or("(not stated)")
    ));

    // Summary: Problem → Solution → Implementation.
    let components = architecture::components(spec);
    let phases = estimation::phases(spec);
    out.push_str("## Summary\n\n");
    let problem = spec
        .description
        .clone()
        .or_else(|| spec.stories.first().map(|story| story.narrative.clone()))
        .unwrap_or_else(|| {
            "NEEDS CLARIFICATION: the spec's problem description could not be read (no overview paragraph, no user story).".to_owned()
        });
    out.push_str(&format!(
        "**Problem**: {}\n\n",
        text::truncate(&problem, 600)
    ));
    let component_names: Vec<&str> = components
        .iter()
        .map(|component| component.name.as_str())
        .collect();
    out.push_str(&format!(
        "**Solution**: {} built as {}. {}\n\n",
        if spec.stories.is_empty() {
            "The feature".to_owned()
        } else {
            format!("{} user stories", spec.stories.len())
        },
        if component_names.is_empty() {
            "one module".to_owned()
        } else {
            format!(
                "{} components ({})",
                component_names.len(),
                component_names.join(", ")
            )
        },
        {
            let open: Vec<&str> = architecture::alternatives(feature)
                .iter()
                .filter(|alternative| alternative.choice == architecture::UNDECIDED)
                .map(|alternative| alternative.topic)
                .collect();
            if open.is_empty() {
                String::new()
            } else {
                format!(
                    "Decisions still open (see research.md): {}.",
                    open.join(", ")
                )
            }
        }
    ));
    out.push_str(&format!(
        "**Implementation**: {} phases in priority order ({}); the P1 phase is the MVP and is validated on its own before the next. {}\n\n",
        phases.len(),
        phases.iter().map(|phase| phase.name.as_str()).collect::<Vec<_>>().join(" → "),
        estimation::NO_DURATION
    ));

    out.push_str("## Technical Context\n\n");
    let context = technical_context(feature);
    for line in &context {
        out.push_str(&line.render());
        out.push('\n');
    }
    out.push('\n');

    out.push_str(
        "## Constitution Check\n\n*GATE: must pass before research; re-checked after design.*\n\n",
    );
    out.push_str(&ConstitutionCheck::of(feature, &context).render());

    out.push_str("## Project Structure\n\n### Documentation (this feature)\n\n```text\n");
    let directory = spec.branch.clone().map_or_else(
        || "specs/[###-feature]/".to_owned(),
        |branch| format!("specs/{branch}/"),
    );
    out.push_str(&format!(
        "{directory}\n    plan.md\n    research.md\n    data-model.md\n    contracts/\n    tasks.md\n```\n\n### Source Code (repository root)\n\n"
    ));
    let (paths, origin) = core_implementation::layout(feature);
    match origin {
        LayoutOrigin::Plan => out.push_str("As in the existing plan:\n\n"),
        LayoutOrigin::Tasks => out.push_str("From the paths tasks.md names:\n\n"),
        // A layout made up from the stories' words would be a guess that prep's tasks then
        // take as the plan's: ask instead.
        LayoutOrigin::Derived => out.push_str("NEEDS CLARIFICATION: no input names the source layout (no Project Structure in an existing plan.md, no file paths in tasks.md). Write the directory tree here before approving: prep's tasks take their file paths from it.\n\n"),
    }
    if !matches!(origin, LayoutOrigin::Derived) {
        out.push_str(&format!(
            "```text\n{}\n```\n\n",
            core_implementation::tree(&paths)
        ));
    }

    out.push_str("## Architecture\n\n");
    let rows: Vec<Vec<String>> = components
        .iter()
        .map(|component| {
            vec![
                component.name.clone(),
                component.responsibilities.clone(),
                component.requirements.join(", "),
            ]
        })
        .collect();
    if rows.is_empty() {
        out.push_str("No components could be derived from the spec.\n\n");
    } else {
        markdown::table(
            &mut out,
            &["Component", "Responsibilities", "Requirements"],
            &rows,
        );
        out.push('\n');
    }
    let decisions: Vec<Vec<String>> = architecture::alternatives(feature)
        .iter()
        .map(|alternative| {
            vec![
                alternative.topic.to_owned(),
                alternative.choice.clone(),
                alternative.trade_off.to_owned(),
                alternative.raised_by.clone(),
            ]
        })
        .collect();
    markdown::table(
        &mut out,
        &["Decision", "Chosen", "To weigh", "Raised by"],
        &decisions,
    );
    out.push('\n');

    out.push_str("## Requirements Traceability\n\n");
    let traces = traceability::trace(spec);
    if traces.is_empty() {
        out.push_str("The spec defines no `FR-###` or `SC-###` requirements.\n\n");
    } else {
        let rows: Vec<Vec<String>> = traces
            .iter()
            .map(|trace| {
                let component = components
                    .iter()
                    .find(|component| component.requirements.contains(&trace.requirement.id))
                    .map_or_else(String::new, |component| component.name.clone());
                let phase = phases
                    .iter()
                    .find(|phase| phase.requirements.contains(&trace.requirement.id))
                    .map_or_else(
                        || "Polish and cross-cutting".to_owned(),
                        |phase| phase.name.clone(),
                    );
                vec![
                    trace.requirement.id.clone(),
                    text::summary(&trace.requirement.text, 80),
                    trace
                        .stories
                        .iter()
                        .map(|story| story.label())
                        .collect::<Vec<_>>()
                        .join(", "),
                    component,
                    phase,
                ]
            })
            .collect();
        markdown::table(
            &mut out,
            &["Requirement", "Summary", "Stories", "Component", "Phase"],
            &rows,
        );
        out.push('\n');
    }

    out.push_str("## Implementation Phases\n\n");
    let rows: Vec<Vec<String>> = phases
        .iter()
        .enumerate()
        .map(|(index, phase)| {
            vec![
                format!("{}", index + 1),
                phase.name.clone(),
                phase.stories.join(", "),
                phase.size.clone(),
            ]
        })
        .collect();
    markdown::table(
        &mut out,
        &["#", "Phase", "Stories", "Size (from the spec)"],
        &rows,
    );
    out.push('\n');

    out.push_str("## Risks\n\n");
    let risks = risk::risks(spec);
    if risks.is_empty() {
        out.push_str("No risk category of the taxonomy is triggered by the spec.\n\n");
    } else {
        risk::risk_table(&mut out, &risks);
        out.push('\n');
    }

    out.push_str(&report::open_questions(feature, "Open Questions"));

    out.push_str("## Complexity Tracking\n\n");
    let scores = scores::scores_for(scores::ScoreInputs::from_feature(feature));
    markdown::table(
        &mut out,
        &[
            "Violation",
            "Why Needed",
            "Simpler Alternative Rejected Because",
        ],
        &[vec![
            "None".to_owned(),
            "The plan stays within the constitution's gates".to_owned(),
            "—".to_owned(),
        ]],
    );
    out.push_str(&format!(
        "\nComplexity score {}; uncertainty score {}.\n\n",
        scores::explain(&scores.complexity),
        scores::explain(&scores.uncertainty)
    ));
    if scores.high_complexity() {
        out.push_str("The complexity score is above 80: review exhaustively and plan two synthesis iterations.\n\n");
    }
    if scores.high_uncertainty() {
        out.push_str("The uncertainty score is above 70: start with a discovery step, resolve the open questions, and state every assumption explicitly.\n\n");
    }
    out.push_str(&sources(call));
    out
}
