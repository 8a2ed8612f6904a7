//! The main agent's QA: structural checks on the synthesized artifacts, ending with
//! `VERDICT: PASS` or `VERDICT: REWORK`.
//!
//! REWORK only for what the synthesizer can fix and a gate should never see: a required
//! artifact missing or empty, a required heading missing or empty (the `## ` headings of the
//! project's spec-kit template of the artifact when the call was given one, such as
//! `plan-template.md`, else the built-in list), a spec requirement (FR)
//! that plan.md or implementation_plan.md does not trace, an optional artifact that is not
//! valid for its format. Everything else (open questions not carried forward, success criteria
//! not named, empty optional sections) is a warning for the person at the gate.
//!
//! Under the adaptive rules' guidance it checks more: uncertain inputs → every markdown
//! artifact must state its assumptions in a filled `## Assumptions` section and give concrete
//! examples (plan.md and implementation_plan.md one per functional requirement), else REWORK
//! naming what is missing; a complex feature → a detailed QA listing where each requirement id
//! is traced.

use std::collections::HashSet;

use stagegate_engine::prompt::NamedText;

use crate::analysts::constitution_check::ConstitutionCheck;
use crate::analysts::technical_context::technical_context;
use crate::analysts::{Asks, Call};
use crate::markdown::{self, BlockKind};
use crate::scores;
use crate::speckit::feature::base_name;
use crate::speckit::{Feature, Template};
use crate::text;

/// The headings each known artifact must have by default (matched case-insensitively, as a
/// substring).
fn builtin_headings(artifact: &str) -> &'static [&'static str] {
    match artifact {
        "plan.md" => &crate::speckit::plan::PLAN_SECTIONS,
        "planning-summary.md" => &["Problem", "Solution", "Implementation"],
        "implementation_plan.md" => &["Approach", "Tasks", "Dependencies"],
        "quality_report.md" => &["Issues", "Impact", "Resolution", "Coverage", "Metrics"],
        _ => &[],
    }
}

/// The headings an artifact must have: the `## ` headings of the project's spec-kit template
/// of it, in order, when the call was given one (`plan-template.md`), else the built-in list.
fn required_headings(artifact: &str, feature: &Feature) -> (Vec<String>, Option<String>) {
    // tasks.md's phases are the feature's own (one per story): its template's example phase
    // headings are not headings every tasks.md must have.
    let from_template = feature
        .template(artifact)
        .filter(|_| base_name(artifact) != "tasks.md")
        .map(Template::parse)
        .map(|template| {
            template
                .headings()
                .into_iter()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .filter(|headings| !headings.is_empty());
    match from_template {
        Some(headings) => (headings, Template::input_name(artifact)),
        None => (
            builtin_headings(artifact)
                .iter()
                .map(|heading| (*heading).to_owned())
                .collect(),
            None,
        ),
    }
}

/// Artifacts that must trace every functional requirement.
const TRACING: &[&str] = &["plan.md", "implementation_plan.md"];

struct Findings {
    checks: Vec<Vec<String>>,
    problems: Vec<String>,
    warnings: Vec<String>,
}

impl Findings {
    fn check(&mut self, artifact: &str, check: &str, ok: bool) {
        self.checks.push(vec![
            artifact.to_owned(),
            check.to_owned(),
            if ok {
                "ok".to_owned()
            } else {
                "failed".to_owned()
            },
        ]);
    }
}

pub(crate) fn check(call: &Call<'_>) -> String {
    let feature = &call.feature;
    let materials = call.materials();
    let mut findings = Findings {
        checks: Vec::new(),
        problems: Vec::new(),
        warnings: Vec::new(),
    };
    for name in &materials.required {
        let artifact = materials
            .artifacts
            .iter()
            .find(|artifact| &artifact.name == name);
        let present = artifact.is_some_and(|artifact| !artifact.content.trim().is_empty());
        findings.check(name, "present and not empty", present);
        if !present {
            findings
                .problems
                .push(format!("Required artifact {name} is missing or empty."));
        }
    }
    let requirement_ids: Vec<&str> = feature
        .spec
        .requirements
        .iter()
        .map(|r| r.id.as_str())
        .collect();
    let criterion_ids: Vec<&str> = feature
        .spec
        .success_criteria
        .iter()
        .map(|r| r.id.as_str())
        .collect();
    let asks = call.asks();
    for artifact in &materials.artifacts {
        check_artifact(
            artifact,
            feature,
            &requirement_ids,
            &criterion_ids,
            &mut findings,
        );
        check_guidance(artifact, asks, &requirement_ids, &mut findings);
    }
    // Open questions must not silently disappear.
    let all_text: String = materials
        .artifacts
        .iter()
        .map(|artifact| artifact.content.to_lowercase())
        .collect::<Vec<_>>()
        .join("\n");
    for question in &feature.spec.open_questions {
        let probe = text::truncate(&question.question.to_lowercase(), 40).replace('…', "");
        let carried = all_text.contains(probe.trim());
        findings.check(
            "(all)",
            &format!("open question at {} carried forward", question.location),
            carried,
        );
        if !carried {
            findings.warnings.push(format!(
                "The open question \"{}\" ({}) is not carried forward as an open question.",
                text::truncate(&question.question, 80),
                question.location
            ));
        }
    }
    check_against_constitution(feature, &materials.artifacts, &mut findings);
    check_substance(feature, &materials.artifacts, &mut findings);

    let stage = if materials.stage_name.is_empty() {
        call.request.identity.stage.clone()
    } else {
        materials.stage_name.clone()
    };
    let mut out = format!(
        "# QA: {stage}\n\n_Main agent (`{}`, built-in): structural checks of the synthesized artifacts against the spec._\n\n",
        call.agent()
    );
    let scores = scores::scores_for(scores::ScoreInputs::from_feature(feature));
    if scores.high_complexity() {
        out.push_str(&format!(
            "Detailed QA: the complexity score is {} (above 80).\n\n",
            scores.complexity.value
        ));
    }
    if asks.assumptions || asks.examples {
        out.push_str("Uncertain inputs: every document artifact must state its assumptions explicitly and give concrete examples.\n\n");
    }
    out.push_str("## Problems\n\n");
    if findings.problems.is_empty() {
        out.push_str("None.\n\n");
    } else {
        for problem in &findings.problems {
            out.push_str(&format!("- {problem}\n"));
        }
        out.push('\n');
    }
    out.push_str("## Warnings\n\n");
    if findings.warnings.is_empty() {
        out.push_str("None.\n\n");
    } else {
        for warning in &findings.warnings {
            out.push_str(&format!("- {warning}\n"));
        }
        out.push('\n');
    }
    out.push_str("## Checks\n\n");
    markdown::table(&mut out, &["Artifact", "Check", "Result"], &findings.checks);
    out.push('\n');
    if asks.detailed {
        out.push_str(&requirement_trace(call));
    }
    out.push_str(if findings.problems.is_empty() {
        "VERDICT: PASS\n"
    } else {
        "VERDICT: REWORK\n"
    });
    out
}

/// A plan that contradicts the constitution fails; a placeholder constitution is reported
/// (the synthesizer cannot fill it, the person can).
fn check_against_constitution(feature: &Feature, artifacts: &[NamedText], findings: &mut Findings) {
    if !artifacts
        .iter()
        .any(|artifact| base_name(&artifact.name) == "plan.md")
    {
        return;
    }
    let check = ConstitutionCheck::of(feature, &technical_context(feature));
    if let ConstitutionCheck::Placeholder { token, line } = &check {
        findings.check("plan.md", "constitution ratified", false);
        findings.warnings.push(format!(
            "The constitution is spec-kit's unfilled template (`{token}` at constitution.md:{line}): no principle was checked. Fill it with `/speckit.constitution`."
        ));
    }
    let failures = check.failures();
    findings.check(
        "plan.md",
        "no conflict with the constitution",
        failures.is_empty(),
    );
    findings.problems.extend(
        failures
            .into_iter()
            .map(|failure| format!("plan.md contradicts the constitution: {failure}.")),
    );
}

/// A plan from a spec of which nothing could be read is empty, however many headings it has.
fn check_substance(feature: &Feature, artifacts: &[NamedText], findings: &mut Findings) {
    let planned = artifacts.iter().any(|artifact| {
        matches!(
            base_name(&artifact.name),
            "plan.md" | "implementation_plan.md"
        )
    });
    if !planned {
        return;
    }
    let spec = &feature.spec;
    let read = !spec.stories.is_empty()
        || !spec.requirements.is_empty()
        || !spec.unnumbered_requirements.is_empty();
    findings.check(
        "(all)",
        "the spec's stories or requirements were read",
        read,
    );
    if !read {
        findings.problems.push(
            "No user story and no requirement could be read from spec.md, so the plan states nothing of the feature: give the spec user stories or requirements (spec-kit's `/speckit.specify`), or answer its open questions.".to_owned(),
        );
    }
}

fn check_artifact(
    artifact: &NamedText,
    feature: &Feature,
    requirement_ids: &[&str],
    criterion_ids: &[&str],
    findings: &mut Findings,
) {
    let name = base_name(&artifact.name);
    let content = artifact.content.as_str();
    if name.ends_with(".json") {
        let valid = serde_json::from_str::<serde_json::Value>(content).is_ok();
        findings.check(&artifact.name, "valid JSON", valid);
        if !valid {
            findings
                .problems
                .push(format!("{} is not valid JSON.", artifact.name));
        }
        return;
    }
    if name.ends_with(".html") {
        let lower = content.to_lowercase();
        let valid = lower.contains("<html") && lower.contains("</html>");
        findings.check(&artifact.name, "an HTML document", valid);
        if !valid {
            findings.problems.push(format!(
                "{} is not a complete HTML document.",
                artifact.name
            ));
        }
        return;
    }
    if !name.ends_with(".md") {
        return;
    }
    let document = markdown::parse(content);
    let sections = markdown::sections(&document);
    let (required, template) = required_headings(name, feature);
    let matches =
        |title: &str, heading: &str| title.to_lowercase().contains(&heading.to_lowercase());
    let from_template = template.as_deref().map_or_else(String::new, |template| {
        format!(" (the project's {template} has it)")
    });
    let mut positions = Vec::new();
    for heading in &required {
        let found = sections
            .iter()
            .position(|(title, _)| matches(title, heading));
        findings.check(
            &artifact.name,
            &format!("`## {heading}` present and filled"),
            found.is_some_and(|at| sections[at].1),
        );
        match found {
            None => findings.problems.push(format!(
                "{} lacks the required section `## {heading}`{from_template}.",
                artifact.name
            )),
            Some(at) if !sections[at].1 => findings.problems.push(format!(
                "{}'s section `## {heading}` is empty.",
                artifact.name
            )),
            Some(at) => positions.push(at),
        }
    }
    if let Some(template) = &template
        && positions.windows(2).any(|pair| pair[0] > pair[1])
    {
        findings.warnings.push(format!(
            "{}'s sections are not in the order of the project's {template}.",
            artifact.name
        ));
    }
    for (title, filled) in &sections {
        let required = required.iter().any(|heading| matches(title, heading));
        if !filled && !required {
            findings.warnings.push(format!(
                "{}'s section `## {title}` is empty.",
                artifact.name
            ));
        }
    }
    if TRACING.contains(&name) {
        let named: HashSet<String> = text::requirement_ids(content).into_iter().collect();
        let missing: Vec<&str> = requirement_ids
            .iter()
            .copied()
            .filter(|id| !named.contains(*id))
            .collect();
        findings.check(
            &artifact.name,
            "every FR of the spec traced",
            missing.is_empty(),
        );
        if !missing.is_empty() {
            findings.problems.push(format!(
                "{} does not trace {}.",
                artifact.name,
                missing.join(", ")
            ));
        }
        let missing_criteria: Vec<&str> = criterion_ids
            .iter()
            .copied()
            .filter(|id| !named.contains(*id))
            .collect();
        if !missing_criteria.is_empty() {
            findings.warnings.push(format!(
                "{} does not name {}.",
                artifact.name,
                missing_criteria.join(", ")
            ));
        }
    }
}

/// Whether an artifact is a document the guidance's checks apply to (markdown, not skipped).
fn is_document(artifact: &NamedText) -> bool {
    base_name(&artifact.name).ends_with(".md") && artifact.content.trim() != "SKIP"
}

/// The guidance's checks: a filled `## Assumptions` section and concrete examples.
fn check_guidance(
    artifact: &NamedText,
    asks: Asks,
    requirement_ids: &[&str],
    findings: &mut Findings,
) {
    if !is_document(artifact) || artifact.content.trim().is_empty() {
        return;
    }
    let name = base_name(&artifact.name);
    let document = markdown::parse(&artifact.content);
    if asks.assumptions {
        let section = markdown::sections(&document)
            .into_iter()
            .find(|(title, _)| title.to_lowercase().contains("assumption"));
        let filled = section.as_ref().is_some_and(|(_, filled)| *filled);
        findings.check(
            &artifact.name,
            "`## Assumptions` present and filled (uncertain inputs)",
            filled,
        );
        match section {
            None => findings.problems.push(format!(
                "{} lacks an `## Assumptions` section: the inputs are uncertain, so list every assumption explicitly (the spec's own, one per open [NEEDS CLARIFICATION], the working assumptions for vague terms).",
                artifact.name
            )),
            Some((_, false)) => findings.problems.push(format!(
                "{}'s `## Assumptions` section is empty: list every assumption explicitly.",
                artifact.name
            )),
            Some(_) => {}
        }
    }
    if asks.examples {
        let examples = examples_text(&document);
        let given = examples
            .as_deref()
            .is_some_and(|text| !text.trim().is_empty());
        findings.check(
            &artifact.name,
            "concrete examples given (uncertain inputs)",
            given,
        );
        if !given {
            findings.problems.push(format!(
                "{} gives no concrete examples: add an `## Examples` section with one example per requirement (given …, when …, then …).",
                artifact.name
            ));
        } else if TRACING.contains(&name) {
            let named: HashSet<String> = text::requirement_ids(examples.as_deref().unwrap_or(""))
                .into_iter()
                .collect();
            let missing: Vec<&str> = requirement_ids
                .iter()
                .copied()
                .filter(|id| !named.contains(*id))
                .collect();
            findings.check(
                &artifact.name,
                "an example for every FR of the spec",
                missing.is_empty(),
            );
            if !missing.is_empty() {
                findings.problems.push(format!(
                    "{} gives no example for {}.",
                    artifact.name,
                    missing.join(", ")
                ));
            }
        }
    }
}

/// The examples a document gives: the text under headings that name examples, and the rows of
/// tables with a filled `Example` column. `None` when it has neither.
fn examples_text(document: &markdown::Document) -> Option<String> {
    let mut found: Option<String> = None;
    let mut inside: Option<u8> = None;
    let mut example_column: Option<usize> = None;
    for block in &document.blocks {
        if let BlockKind::Heading { level } = block.kind {
            if inside.is_some_and(|open| level <= open) {
                inside = None;
            }
            if block.text.to_lowercase().contains("example") {
                inside = Some(level);
                found.get_or_insert_with(String::new);
            }
            example_column = None;
            continue;
        }
        if inside.is_some() {
            let text = found.get_or_insert_with(String::new);
            text.push_str(&block.text);
            text.push('\n');
            continue;
        }
        if block.kind != BlockKind::TableRow {
            example_column = None;
            continue;
        }
        if markdown::is_separator_row(&block.text) {
            continue;
        }
        let cells = markdown::table_cells(&block.text);
        match example_column {
            None => {
                example_column = cells
                    .iter()
                    .position(|cell| cell.to_lowercase().contains("example"));
                if example_column.is_some() {
                    found.get_or_insert_with(String::new);
                }
            }
            Some(column) => {
                let filled = cells
                    .get(column)
                    .is_some_and(|cell| !cell.trim().is_empty() && cell.trim() != "—");
                if filled {
                    let text = found.get_or_insert_with(String::new);
                    text.push_str(&block.text);
                    text.push('\n');
                }
            }
        }
    }
    found
}

/// `## Requirement Trace` (detailed QA): every requirement id and the artifacts naming it.
fn requirement_trace(call: &Call<'_>) -> String {
    let spec = &call.feature.spec;
    let artifacts: Vec<(&str, HashSet<String>)> = call
        .materials()
        .artifacts
        .iter()
        .map(|artifact| {
            let ids = text::requirement_ids(&artifact.content)
                .into_iter()
                .collect();
            (artifact.name.as_str(), ids)
        })
        .collect();
    let mut out = String::from("## Requirement Trace\n\n");
    if spec.requirements.is_empty() && spec.success_criteria.is_empty() {
        out.push_str("The spec defines no `FR-###` or `SC-###` requirements.\n\n");
        return out;
    }
    let rows: Vec<Vec<String>> = spec
        .requirements
        .iter()
        .chain(&spec.success_criteria)
        .map(|requirement| {
            let traced: Vec<&str> = artifacts
                .iter()
                .filter(|(_, ids)| ids.contains(&requirement.id))
                .map(|(name, _)| *name)
                .collect();
            vec![
                requirement.id.clone(),
                text::summary(&requirement.text, 70),
                traced.join(", "),
                if traced.is_empty() {
                    "missing".to_owned()
                } else {
                    "traced".to_owned()
                },
            ]
        })
        .collect();
    markdown::table(
        &mut out,
        &["Requirement", "Summary", "Traced in", "Status"],
        &rows,
    );
    let missing = rows.iter().filter(|row| row[3] == "missing").count();
    out.push_str(&format!(
        "\n{} of {} requirement(s) traced into the artifacts; {missing} missing.\n\n",
        rows.len() - missing,
        rows.len()
    ));
    out
}
