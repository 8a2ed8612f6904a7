//! The main agent's QA: structural checks on the synthesized artifacts, ending with
//! `VERDICT: PASS` or `VERDICT: REWORK`.
//!
//! REWORK only for what the synthesizer can fix and a gate should never see: a required
//! artifact missing or empty, a required heading missing or empty, a spec requirement (FR)
//! that plan.md or implementation_plan.md does not trace, an optional artifact that is not
//! valid for its format. Everything else (open questions not carried forward, success criteria
//! not named, empty optional sections) is a warning for the person at the gate.

use std::collections::HashSet;

use stagegate_engine::prompt::NamedText;

use crate::analysts::Call;
use crate::markdown;
use crate::scores;
use crate::speckit::feature::base_name;
use crate::text;

/// The headings each known artifact must have (matched case-insensitively, as a substring).
fn required_headings(artifact: &str) -> &'static [&'static str] {
    match artifact {
        "plan.md" => &crate::speckit::plan::PLAN_SECTIONS,
        "planning-summary.md" => &["Problem", "Solution", "Implementation"],
        "implementation_plan.md" => &["Approach", "Tasks", "Dependencies"],
        "quality_report.md" => &["Issues", "Impact", "Resolution", "Coverage", "Metrics"],
        _ => &[],
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
    for artifact in &materials.artifacts {
        check_artifact(artifact, &requirement_ids, &criterion_ids, &mut findings);
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
    out.push_str(if findings.problems.is_empty() {
        "VERDICT: PASS\n"
    } else {
        "VERDICT: REWORK\n"
    });
    out
}

fn check_artifact(
    artifact: &NamedText,
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
    for heading in required_headings(name) {
        let found = sections
            .iter()
            .find(|(title, _)| title.to_lowercase().contains(&heading.to_lowercase()));
        findings.check(
            &artifact.name,
            &format!("`## {heading}` present and filled"),
            found.is_some_and(|(_, filled)| *filled),
        );
        match found {
            None => findings.problems.push(format!(
                "{} lacks the required section `## {heading}`.",
                artifact.name
            )),
            Some((_, false)) => findings.problems.push(format!(
                "{}'s section `## {heading}` is empty.",
                artifact.name
            )),
            Some(_) => {}
        }
    }
    for (title, filled) in &sections {
        let required = required_headings(name)
            .iter()
            .any(|heading| title.to_lowercase().contains(&heading.to_lowercase()));
        if !filled && !required {
            findings.warnings.push(format!(
                "{}'s section `## {title}` is empty.",
                artifact.name
            ));
        }
    }
    if TRACING.contains(&name) {
        let named: HashSet<String> = text::ids(content, "FR-")
            .into_iter()
            .chain(text::ids(content, "SC-"))
            .collect();
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
