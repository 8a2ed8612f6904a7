//! `plan.md` under spec-kit's plan template headings (Summary, Technical Context,
//! Constitution Check, Project Structure, Complexity Tracking), told as Problem → Solution →
//! Implementation, with every requirement traced and every open question carried forward.

use crate::analysts::core_implementation::{self, LayoutOrigin};
use crate::analysts::synthesis::sources;
use crate::analysts::{Call, architecture, estimation, report, risk, traceability};
use crate::markdown;
use crate::scores;
use crate::speckit::Feature;
use crate::text;

/// Technologies recognized in the inputs, by Technical Context key.
const TECHNOLOGIES: &[(&str, &[&str])] = &[
    (
        "Language/Version",
        &[
            "TypeScript",
            "JavaScript",
            "Python",
            "Rust",
            "Go",
            "Java",
            "Kotlin",
            "Swift",
            "C#",
            "Ruby",
            "PHP",
            "Elixir",
        ],
    ),
    (
        "Storage",
        &[
            "PostgreSQL",
            "MySQL",
            "SQLite",
            "MongoDB",
            "Redis",
            "object storage",
            "S3",
        ],
    ),
];

fn detect(feature: &Feature, names: &[&str]) -> Vec<String> {
    let all: String = feature
        .texts
        .iter()
        .map(|file| file.content.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    let lower = all.to_lowercase();
    names
        .iter()
        .filter(|name| text::contains_word(&lower, &name.to_lowercase()))
        .map(|name| (*name).to_owned())
        .collect()
}

/// The Technical Context lines: what the inputs state, else `NEEDS CLARIFICATION`.
pub(crate) fn technical_context(feature: &Feature) -> Vec<(String, String)> {
    let spec = &feature.spec;
    let unknown = "NEEDS CLARIFICATION (not stated in the inputs)".to_owned();
    let from_plan = |key: &str| {
        feature
            .plan
            .as_ref()
            .and_then(|plan| plan.context(key))
            .map(str::to_owned)
    };
    let mut lines = Vec::new();
    for (key, names) in TECHNOLOGIES {
        let found = detect(feature, names);
        let value = from_plan(key.split('/').next().unwrap_or(key))
            .or_else(|| (!found.is_empty()).then(|| found.join(", ")))
            .unwrap_or_else(|| unknown.clone());
        lines.push(((*key).to_owned(), value));
    }
    let lower: String = feature
        .texts
        .iter()
        .map(|file| file.content.to_lowercase())
        .collect::<Vec<_>>()
        .join("\n");
    let web = ["browser", "web app", "frontend", "page"]
        .iter()
        .any(|word| lower.contains(word));
    let mobile = ["mobile app", "ios", "android"]
        .iter()
        .any(|word| text::contains_word(&lower, word));
    lines.insert(
        1,
        (
            "Primary Dependencies".to_owned(),
            from_plan("primary dependencies").unwrap_or_else(|| unknown.clone()),
        ),
    );
    lines.push((
        "Testing".to_owned(),
        from_plan("testing").unwrap_or_else(|| {
            "unit, contract and integration tests, one acceptance test per scenario".to_owned()
        }),
    ));
    lines.push((
        "Target Platform".to_owned(),
        from_plan("target platform").unwrap_or_else(|| match (web, mobile) {
            (true, _) => "current desktop and mobile browsers, server on Linux".to_owned(),
            (false, true) => "mobile devices".to_owned(),
            _ => unknown.clone(),
        }),
    ));
    lines.push((
        "Project Type".to_owned(),
        from_plan("project type").unwrap_or_else(|| {
            if web {
                "web application (frontend + backend)".to_owned()
            } else {
                "single project".to_owned()
            }
        }),
    ));
    let goals: Vec<String> = spec
        .success_criteria
        .iter()
        .filter(|criterion| text::has_number(&criterion.text))
        .map(|criterion| format!("{} {}", criterion.id, text::truncate(&criterion.text, 80)))
        .collect();
    lines.push((
        "Performance Goals".to_owned(),
        if goals.is_empty() {
            unknown.clone()
        } else {
            goals.join("; ")
        },
    ));
    let constraints: Vec<String> = spec
        .requirements
        .iter()
        .filter(|requirement| text::has_number(&requirement.text))
        .map(|requirement| requirement.id.clone())
        .collect();
    lines.push((
        "Constraints".to_owned(),
        if constraints.is_empty() {
            "none stated".to_owned()
        } else {
            format!("the limits of {}", constraints.join(", "))
        },
    ));
    lines.push((
        "Scale/Scope".to_owned(),
        format!(
            "{} user stories, {} functional requirements, {} success criteria, {} key entities",
            spec.stories.len(),
            spec.requirements.len(),
            spec.success_criteria.len(),
            spec.entities.len()
        ),
    ));
    lines
}

/// How the plan honours a principle, by its words.
fn compliance(name_and_text: &str) -> &'static str {
    let lower = name_and_text.to_lowercase();
    if lower.contains("test") {
        "test tasks come before implementation in every story phase; one acceptance test per scenario"
    } else if lower.contains("simplic") || lower.contains("yagni") {
        "one service with modules, no speculative abstractions (see Complexity Tracking)"
    } else if lower.contains("library") || lower.contains("modular") {
        "each component is a module with its own interface"
    } else if lower.contains("observab") || lower.contains("log") {
        "an audit log and structured logs for every state change"
    } else if lower.contains("secur") || lower.contains("privacy") {
        "access checked in one place; risks and mitigations listed under Risks"
    } else if lower.contains("cli") || lower.contains("interface") {
        "every operation is reachable through a documented interface"
    } else {
        "nothing in the plan conflicts with it"
    }
}

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
        .unwrap_or_else(|| "The spec states no problem description.".to_owned());
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
        architecture::alternatives(feature)
            .iter()
            .skip(1)
            .map(|alternative| format!("{}: {}.", alternative.topic, alternative.choice))
            .collect::<Vec<_>>()
            .join(" ")
    ));
    let low: f64 = phases.iter().map(|phase| phase.low).sum();
    let high: f64 = phases.iter().map(|phase| phase.high).sum();
    out.push_str(&format!(
        "**Implementation**: {} phases in priority order ({}), {low:.1}–{high:.1} person-days; the P1 phase is the MVP and is validated on its own before the next.\n\n",
        phases.len(),
        phases.iter().map(|phase| phase.name.as_str()).collect::<Vec<_>>().join(" → ")
    ));

    out.push_str("## Technical Context\n\n");
    for (key, value) in technical_context(feature) {
        out.push_str(&format!("**{key}**: {value}\n"));
    }
    out.push('\n');

    out.push_str(
        "## Constitution Check\n\n*GATE: must pass before research; re-checked after design.*\n\n",
    );
    match &feature.constitution {
        Some(constitution) if !constitution.principles.is_empty() => {
            let rows: Vec<Vec<String>> = constitution
                .principles
                .iter()
                .map(|principle| {
                    vec![
                        principle.name.clone(),
                        compliance(&format!("{} {}", principle.name, principle.text)).to_owned(),
                        "PASS".to_owned(),
                    ]
                })
                .collect();
            markdown::table(
                &mut out,
                &["Principle", "How the plan complies", "Status"],
                &rows,
            );
            out.push('\n');
        }
        _ => {
            out.push_str("No constitution was among the inputs (`.specify/memory/constitution.md`); the default gates apply:\n\n");
            let rows = vec![
                vec![
                    "Simplicity".to_owned(),
                    compliance("simplicity").to_owned(),
                    "PASS".to_owned(),
                ],
                vec![
                    "Test-first".to_owned(),
                    compliance("test").to_owned(),
                    "PASS".to_owned(),
                ],
                vec![
                    "Traceability".to_owned(),
                    "every requirement is traced below".to_owned(),
                    "PASS".to_owned(),
                ],
            ];
            markdown::table(
                &mut out,
                &["Gate", "How the plan complies", "Status"],
                &rows,
            );
            out.push('\n');
        }
    }

    out.push_str("## Project Structure\n\n### Documentation (this feature)\n\n```text\n");
    let directory = spec.branch.clone().map_or_else(
        || "specs/[###-feature]/".to_owned(),
        |branch| format!("specs/{branch}/"),
    );
    out.push_str(&format!(
        "{directory}\n    plan.md\n    research.md\n    data-model.md\n    contracts/\n    tasks.md\n```\n\n### Source Code (repository root)\n\n"
    ));
    let (paths, origin) = core_implementation::layout(feature);
    out.push_str(match origin {
        LayoutOrigin::Plan => "As in the existing plan:\n\n",
        LayoutOrigin::Tasks => "From the paths tasks.md names:\n\n",
        LayoutOrigin::Derived => "Derived from the stories and entities:\n\n",
    });
    out.push_str(&format!(
        "```text\n{}\n```\n\n",
        core_implementation::tree(&paths)
    ));

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
                alternative.choice.to_owned(),
                alternative.trade_off.to_owned(),
            ]
        })
        .collect();
    markdown::table(&mut out, &["Decision", "Chosen", "Trade-off"], &decisions);
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
                format!("{:.1}–{:.1} days", phase.low, phase.high),
            ]
        })
        .collect();
    markdown::table(&mut out, &["#", "Phase", "Stories", "Effort"], &rows);
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
