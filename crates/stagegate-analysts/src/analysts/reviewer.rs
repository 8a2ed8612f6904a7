//! The reviewers (`lead-reviewer-a`, `integration-reviewer-b`, `lead-reviewer-c` and any
//! other): reconcile the role agents' outputs — what each covered, where they conflict, what
//! is missing (agents that failed, requirements nobody addressed) — and give the synthesizer
//! its guidance. When the outputs carry findings tables (Stage C, or any reviewer's input in
//! that shape) it merges them into one prioritized, deduplicated issue list.
//!
//! It reads the outputs as text, so it reconciles real models' answers as well as the
//! built-in analysts'.

use std::collections::BTreeMap;

use crate::analysts::confidence::Confidence;
use crate::analysts::risk::Severity;
use crate::analysts::{Call, report};
use crate::markdown::{self, BlockKind};
use crate::text;

/// A findings-table row read from an agent's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MergedFinding {
    pub(crate) severity: Severity,
    pub(crate) category: String,
    pub(crate) location: String,
    pub(crate) summary: String,
    pub(crate) recommendation: String,
    /// The agents that reported it.
    pub(crate) reporters: Vec<String>,
}

/// Rows of every markdown table whose header has `Severity` and `Summary` (or `Category`).
pub(crate) fn read_findings(agent: &str, output: &str) -> Vec<MergedFinding> {
    let document = markdown::parse(output);
    let mut found = Vec::new();
    let mut header: Option<Vec<String>> = None;
    for block in &document.blocks {
        if block.kind != BlockKind::TableRow {
            header = None;
            continue;
        }
        if markdown::is_separator_row(&block.text) {
            continue;
        }
        let cells = markdown::table_cells(&block.text);
        match &header {
            None => {
                let lower: Vec<String> = cells.iter().map(|cell| cell.to_lowercase()).collect();
                header = Some(lower);
            }
            Some(names) => {
                let column = |name: &str| names.iter().position(|header| header.contains(name));
                let Some(severity_at) = column("severity") else {
                    continue;
                };
                // A risk register has no summary: its category says what, its evidence where.
                let (summary_at, location_at) = match column("summary") {
                    Some(at) => (at, column("location")),
                    None => match (column("category"), column("evidence")) {
                        (Some(category), evidence) => (category, evidence),
                        (None, _) => continue,
                    },
                };
                let cell = |at: Option<usize>| {
                    at.and_then(|at| cells.get(at)).cloned().unwrap_or_default()
                };
                let Some(severity) = cells.get(severity_at).and_then(|s| Severity::parse(s)) else {
                    continue;
                };
                found.push(MergedFinding {
                    severity,
                    category: cell(column("category")),
                    location: cell(location_at),
                    summary: cells.get(summary_at).cloned().unwrap_or_default(),
                    recommendation: cell(column("recommendation").or_else(|| column("mitigation"))),
                    reporters: vec![agent.to_owned()],
                });
            }
        }
    }
    found
}

/// Merges the outputs' findings: deduplicated by category, location and summary, most severe
/// first (a finding reported with two severities keeps the higher one).
pub(crate) fn merge_findings(outputs: &[(String, String)]) -> (Vec<MergedFinding>, Vec<String>) {
    let mut merged: BTreeMap<(String, String, String), MergedFinding> = BTreeMap::new();
    let mut conflicts = Vec::new();
    for (agent, output) in outputs {
        for finding in read_findings(agent, output) {
            let key = (
                finding.category.to_lowercase(),
                finding.location.to_lowercase(),
                finding.summary.to_lowercase(),
            );
            match merged.get_mut(&key) {
                Some(existing) => {
                    if existing.severity != finding.severity {
                        conflicts.push(format!(
                            "\"{}\" at {}: {} says {}, {} says {}; keeping {}",
                            text::truncate(&finding.summary, 80),
                            finding.location,
                            existing.reporters.join("/"),
                            existing.severity.as_str(),
                            agent,
                            finding.severity.as_str(),
                            existing.severity.min(finding.severity).as_str()
                        ));
                        existing.severity = existing.severity.min(finding.severity);
                    }
                    if !existing.reporters.contains(agent) {
                        existing.reporters.push(agent.clone());
                    }
                }
                None => {
                    merged.insert(key, finding);
                }
            }
        }
    }
    let mut list: Vec<MergedFinding> = merged.into_values().collect();
    list.sort_by(|a, b| {
        a.severity
            .cmp(&b.severity)
            .then_with(|| a.category.cmp(&b.category))
            .then_with(|| a.location.cmp(&b.location))
            .then_with(|| a.summary.cmp(&b.summary))
    });
    (list, conflicts)
}

/// The `CONFIDENCE:` value an output states, if any.
fn stated_confidence(output: &str) -> Option<f64> {
    output.lines().rev().find_map(|line| {
        let value = line.trim().strip_prefix("CONFIDENCE:")?;
        value.trim().parse::<f64>().ok()
    })
}

pub(crate) fn review(call: &Call<'_>) -> String {
    let feature = &call.feature;
    let materials = call.materials();
    let stage = call.request.identity.stage.as_str();
    let title = if call.agent().starts_with("integration") {
        "Integration Review"
    } else {
        "Lead Review"
    };
    let mut out = report::header(call, title);
    let requirement_ids: Vec<String> = feature
        .spec
        .requirements
        .iter()
        .chain(&feature.spec.success_criteria)
        .map(|requirement| requirement.id.clone())
        .collect();

    out.push_str("## Coverage by Agent\n\n");
    let mut mentioned_by: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    if materials.outputs.is_empty() {
        out.push_str("No agent output reached the review.\n\n");
    } else {
        let rows: Vec<Vec<String>> = materials
            .outputs
            .iter()
            .map(|output| {
                let sections: Vec<String> = markdown::parse(&output.output)
                    .blocks
                    .iter()
                    .filter(|block| block.kind == BlockKind::Heading { level: 2 })
                    .map(|block| block.text.clone())
                    .take(12)
                    .collect();
                let ids = text::requirement_ids(&output.output);
                for id in &requirement_ids {
                    if ids.contains(id) {
                        mentioned_by
                            .entry(id.as_str())
                            .or_default()
                            .push(output.agent.as_str());
                    }
                }
                vec![
                    output.agent.clone(),
                    output.role.clone(),
                    sections.join("; "),
                    format!(
                        "{} of {}",
                        ids.iter().filter(|id| requirement_ids.contains(id)).count(),
                        requirement_ids.len()
                    ),
                    stated_confidence(&output.output)
                        .map_or("not stated".to_owned(), text::two_decimals),
                ]
            })
            .collect();
        markdown::table(
            &mut out,
            &[
                "Agent",
                "Role",
                "Covered sections",
                "Requirements named",
                "Confidence",
            ],
            &rows,
        );
        out.push('\n');
    }

    if call.asks().exhaustive {
        out.push_str(&requirement_coverage(call, &mentioned_by));
    }

    out.push_str("## Gaps\n\n");
    let mut gaps = Vec::new();
    for failure in &materials.failures {
        gaps.push(format!(
            "`{}` failed ({}): its part must be rebuilt from the spec by the synthesizer; {}",
            failure.agent,
            text::truncate(&failure.reason, 120),
            what_is_missing(&failure.agent)
        ));
    }
    let unaddressed: Vec<&str> = requirement_ids
        .iter()
        .filter(|id| !mentioned_by.contains_key(id.as_str()))
        .map(String::as_str)
        .collect();
    if !materials.outputs.is_empty() && !unaddressed.is_empty() {
        gaps.push(format!(
            "Requirements no output names: {}",
            unaddressed.join(", ")
        ));
    }
    out.push_str(&report::bullets(
        &gaps,
        "None: every agent answered and every requirement was addressed.",
    ));

    let outputs: Vec<(String, String)> = materials
        .outputs
        .iter()
        .map(|output| (output.agent.clone(), output.output.clone()))
        .collect();
    let (merged, severity_conflicts) = merge_findings(&outputs);

    out.push_str("## Conflicts\n\n");
    let mut conflicts = severity_conflicts;
    let confidences: Vec<(String, f64)> = materials
        .outputs
        .iter()
        .filter_map(|output| {
            stated_confidence(&output.output).map(|value| (output.agent.clone(), value))
        })
        .collect();
    if let (Some(low), Some(high)) = (
        confidences.iter().min_by(|a, b| a.1.total_cmp(&b.1)),
        confidences.iter().max_by(|a, b| a.1.total_cmp(&b.1)),
    ) && high.1 - low.1 >= 0.25
    {
        conflicts.push(format!(
                "Confidence differs widely: {} {:.2} vs {} {:.2}; prefer the better-grounded output where they disagree",
                low.0, low.1, high.0, high.1
            ));
    }
    let partial: Vec<String> = mentioned_by
        .iter()
        .filter(|(_, agents)| agents.len() == 1 && materials.outputs.len() > 1)
        .map(|(id, agents)| format!("{id} ({})", agents[0]))
        .take(20)
        .collect();
    if !partial.is_empty() {
        conflicts.push(format!(
            "Named by one agent only (check the others did not overlook them): {}",
            partial.join(", ")
        ));
    }
    out.push_str(&report::bullets(
        &conflicts,
        "No conflicts between the outputs were found.",
    ));

    if !merged.is_empty() {
        out.push_str("## Prioritized Issues\n\n");
        let rows: Vec<Vec<String>> = merged
            .iter()
            .enumerate()
            .map(|(index, finding)| {
                vec![
                    format!("P{}", index + 1),
                    finding.severity.as_str().to_owned(),
                    finding.category.clone(),
                    finding.location.clone(),
                    finding.summary.clone(),
                    finding.recommendation.clone(),
                    finding.reporters.join(", "),
                ]
            })
            .collect();
        markdown::table(
            &mut out,
            &[
                "Priority",
                "Severity",
                "Category",
                "Location",
                "Summary",
                "Recommendation",
                "Reported by",
            ],
            &rows,
        );
        let critical = merged
            .iter()
            .filter(|f| f.severity == Severity::Critical)
            .count();
        out.push_str(&format!(
            "\n{} unique issue(s) after deduplication; {critical} critical.\n\n",
            merged.len()
        ));
        if critical > 0 {
            out.push_str("### Critical Findings\n\n");
            for finding in merged.iter().filter(|f| f.severity == Severity::Critical) {
                out.push_str(&format!(
                    "- {} — {}{}\n",
                    finding.category,
                    if finding.location.is_empty() {
                        "(no location)"
                    } else {
                        &finding.location
                    },
                    if finding.summary == finding.category {
                        String::new()
                    } else {
                        format!(": {}", finding.summary)
                    }
                ));
            }
            out.push('\n');
        }
    }

    out.push_str("## Synthesis Guidance\n\n");
    let mut guidance: Vec<String> = match stage {
        "plan" => vec![
            "Write plan.md under spec-kit's headings: Summary, Technical Context, Constitution Check, Project Structure, Complexity Tracking; tell it as Problem → Solution → Implementation.".to_owned(),
            "Confirm the solution architect's components and alternatives as the architecture decisions; take risks and mitigations from the risk analysis and phases from the estimation.".to_owned(),
            format!("Trace every requirement ({} in all) in the plan.", requirement_ids.len()),
        ],
        "prep" => vec![
            "Write implementation_plan.md as Approach → Tasks → Dependencies, tasks in spec-kit's `- [ ] T001 [P] [US1]` form.".to_owned(),
            "Keep API names and error handling as the integrations engineer defined them; one test per acceptance scenario from the test plan.".to_owned(),
            format!("Every requirement ({} in all) needs a task.", requirement_ids.len()),
        ],
        "analyze" => vec![
            "Write quality_report.md as Issues → Impact → Resolution over the six categories, CRITICAL first.".to_owned(),
            "Use the prioritized issue list above as the issue list; keep the coverage table and the metrics.".to_owned(),
        ],
        _ => vec!["Combine the outputs under the stage's artifact headings; keep every requirement id traceable.".to_owned()],
    };
    if !feature.spec.open_questions.is_empty() {
        guidance.push(format!(
            "Carry the {} open [NEEDS CLARIFICATION] question(s) forward as open questions; do not invent answers.",
            feature.spec.open_questions.len()
        ));
    }
    if !materials.failures.is_empty() {
        guidance.push(
            "Rebuild the failed agents' parts from the spec and say so in the artifact.".to_owned(),
        );
    }
    out.push_str(&report::bullets(&guidance, ""));
    out.push_str(&report::reading_notes(feature));
    let mut confidence = Confidence::for_feature(feature);
    confidence.subtract(
        0.05 * materials.failures.len() as f64,
        format!("{} failed agent(s)", materials.failures.len()),
    );
    out.push_str(&confidence.render());
    out
}

/// `## Requirement Coverage` (exhaustive review): every requirement, the agents that name it
/// and whether that is enough.
fn requirement_coverage(call: &Call<'_>, mentioned_by: &BTreeMap<&str, Vec<&str>>) -> String {
    let spec = &call.feature.spec;
    let agents = call.materials().outputs.len();
    let mut out = String::from("## Requirement Coverage\n\n");
    out.push_str("_Exhaustive review (the feature is complex): every requirement and every agent that addressed it._\n\n");
    if spec.requirements.is_empty() && spec.success_criteria.is_empty() {
        out.push_str("The spec defines no `FR-###` or `SC-###` requirements.\n\n");
        return out;
    }
    let rows: Vec<Vec<String>> = spec
        .requirements
        .iter()
        .chain(&spec.success_criteria)
        .map(|requirement| {
            let named: &[&str] = mentioned_by
                .get(requirement.id.as_str())
                .map_or(&[], Vec::as_slice);
            let status = match named.len() {
                0 => "not addressed: the synthesizer must cover it from the spec".to_owned(),
                1 if agents > 1 => "one agent only: check the others".to_owned(),
                count => format!("covered ({count} of {agents})"),
            };
            vec![
                requirement.id.clone(),
                text::summary(&requirement.text, 70),
                named.join(", "),
                status,
            ]
        })
        .collect();
    markdown::table(
        &mut out,
        &["Requirement", "Summary", "Named by", "Status"],
        &rows,
    );
    out.push('\n');
    out
}

/// What a failed built-in agent's absence leaves out.
fn what_is_missing(agent: &str) -> &'static str {
    match agent {
        "requirements-analyst" => "the requirement traceability and success metrics",
        "solution-architect" => "the components, interfaces and alternatives",
        "risk-compliance-analyst" => "the risk register and edge-case handling",
        "estimation-scope-analyst" => "the phases, effort ranges and milestones",
        "core-implementer" => "the module layout",
        "integrations-engineer" => "the API contracts, error handling and configuration",
        "test-engineer" => "the test plan",
        "docs-engineer" => "the documentation plan",
        "completeness-reviewer" => "the coverage-gap and underspecification findings",
        "feasibility-reviewer" => "the feasibility and constitution findings",
        "security-reviewer" => "the security findings",
        "consistency-reviewer" => "the duplication, ambiguity and inconsistency findings",
        _ => "its role's analysis",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn findings_are_merged_deduplicated_and_sorted() {
        let first = "| ID | Category | Severity | Location | Summary | Recommendation |\n|---|---|---|---|---|---|\n| A1 | Ambiguity | MEDIUM | FR-001 | vague | fix |\n| G1 | Coverage Gap | HIGH | FR-002 | no task | add |\n";
        let second = "| ID | Category | Severity | Location | Summary | Recommendation |\n|---|---|---|---|---|---|\n| A1 | Ambiguity | HIGH | FR-001 | vague | fix |\n| C1 | Constitution Alignment | CRITICAL | plan | fails | comply |\n";
        let (merged, conflicts) = merge_findings(&[
            ("one".to_owned(), first.to_owned()),
            ("two".to_owned(), second.to_owned()),
        ]);
        let severities: Vec<Severity> = merged.iter().map(|f| f.severity).collect();
        assert_eq!(
            severities,
            vec![Severity::Critical, Severity::High, Severity::High]
        );
        assert_eq!(merged.len(), 3);
        assert_eq!(conflicts.len(), 1);
        let vague = merged
            .iter()
            .find(|f| f.summary == "vague")
            .expect("merged");
        assert_eq!(vague.reporters, vec!["one", "two"]);
    }
}
