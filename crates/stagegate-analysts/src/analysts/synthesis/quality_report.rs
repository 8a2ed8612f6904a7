//! `quality_report.md`: Issues → Impact → Resolution over `/speckit.analyze`'s six categories,
//! most severe first, with the coverage table, unmapped tasks and the metrics block. The issue
//! list is the analysis of the inputs merged with any findings the reviewers' outputs add.

use crate::analysts::findings::{self, Category};
use crate::analysts::reviewer;
use crate::analysts::risk::Severity;
use crate::analysts::synthesis::sources;
use crate::analysts::{Call, report};
use crate::markdown;

/// What a category of issue costs when left alone.
fn impact(category: Category) -> &'static str {
    match category {
        Category::Duplication => {
            "two sources of truth drift apart; tests and tasks end up tracing the wrong copy"
        }
        Category::Ambiguity => "implementers guess; acceptance becomes a matter of opinion",
        Category::Underspecification => {
            "the behaviour cannot be tested, so it cannot be shown to be done"
        }
        Category::ConstitutionAlignment => {
            "the plan breaks a project rule that is not negotiable without an amendment"
        }
        Category::CoverageGap => "a requirement can ship unimplemented or untested",
        Category::Inconsistency => "artifacts contradict each other; whichever is read last wins",
    }
}

/// Where in spec-kit's workflow this analysis ran, from tasks.md's own checkboxes.
pub(crate) fn analysis_point(feature: &crate::speckit::Feature) -> String {
    match &feature.tasks {
        None => {
            "no tasks.md was among the inputs, so the point in the workflow is unknown".to_owned()
        }
        Some(list) if list.tasks.is_empty() => "tasks.md lists no tasks".to_owned(),
        Some(list) => {
            let (total, checked) = (list.total, list.checked);
            let open = total - checked;
            if open == 0 {
                format!("after implementation — all {total} tasks in tasks.md are checked")
            } else {
                format!(
                    "after tasks, before implementation (as `/speckit.analyze`) — {open} of {total} tasks in tasks.md are open, {checked} checked"
                )
            }
        }
    }
}

pub(crate) fn write(call: &Call<'_>) -> String {
    let feature = &call.feature;
    let analysis = findings::analyze(feature);
    let mut out = format!("# Quality Report: {}\n\n", feature.name);
    out.push_str(&format!("**When**: {}\n\n", analysis_point(feature)));

    out.push_str("## Issues\n\n");
    let prioritized = findings::prioritized(&analysis.findings);
    if prioritized.is_empty() {
        out.push_str("No issues found in the six categories.\n\n");
    } else {
        findings::findings_table(&mut out, &prioritized);
        out.push('\n');
    }
    // Findings only the reviewers' outputs hold (a real model's, for instance).
    let outputs: Vec<(String, String)> = call
        .materials()
        .outputs
        .iter()
        .map(|output| (output.agent.clone(), output.output.clone()))
        .collect();
    let (merged, _) = reviewer::merge_findings(&outputs);
    let extra: Vec<Vec<String>> = merged
        .iter()
        .filter(|finding| {
            Category::ALL
                .iter()
                .any(|category| category.as_str().eq_ignore_ascii_case(&finding.category))
        })
        .filter(|finding| {
            !analysis.findings.iter().any(|own| {
                own.summary.eq_ignore_ascii_case(&finding.summary)
                    && own.location.eq_ignore_ascii_case(&finding.location)
            })
        })
        .map(|finding| {
            vec![
                finding.severity.as_str().to_owned(),
                finding.category.clone(),
                finding.location.clone(),
                finding.summary.clone(),
                finding.recommendation.clone(),
                finding.reporters.join(", "),
            ]
        })
        .collect();
    if !extra.is_empty() {
        out.push_str("### Further issues from the reviewers\n\n");
        markdown::table(
            &mut out,
            &[
                "Severity",
                "Category",
                "Location",
                "Summary",
                "Recommendation",
                "Reported by",
            ],
            &extra,
        );
        out.push('\n');
    }

    out.push_str("## Impact\n\n");
    let mut rows = Vec::new();
    for category in Category::ALL {
        let count = analysis.count(category);
        let worst = analysis
            .findings
            .iter()
            .filter(|finding| finding.category == category)
            .map(|finding| finding.severity)
            .min();
        rows.push(vec![
            category.as_str().to_owned(),
            count.to_string(),
            worst.map_or("—".to_owned(), |severity| severity.as_str().to_owned()),
            if count == 0 {
                "none".to_owned()
            } else {
                impact(category).to_owned()
            },
        ]);
    }
    markdown::table(
        &mut out,
        &[
            "Category",
            "Issues",
            "Highest severity",
            "Impact if unresolved",
        ],
        &rows,
    );
    out.push('\n');

    out.push_str("## Resolution\n\n");
    let mut steps = Vec::new();
    for severity in [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
    ] {
        let ids: Vec<&str> = prioritized
            .iter()
            .filter(|finding| finding.severity == severity)
            .map(|finding| finding.id.as_str())
            .collect();
        if ids.is_empty() {
            continue;
        }
        let when = match severity {
            Severity::Critical => "before /speckit.implement continues: these block the release",
            Severity::High => "in this iteration",
            Severity::Medium => "before the feature is called done",
            Severity::Low => "when convenient",
        };
        steps.push(format!(
            "{} — resolve {when}: {}",
            severity.as_str(),
            ids.join(", ")
        ));
    }
    if !feature.spec.open_questions.is_empty() {
        steps.push(
            "Answer the open questions with /speckit.clarify, then re-run /speckit.analyze."
                .to_owned(),
        );
    }
    out.push_str(&report::bullets(&steps, "Nothing to resolve: proceed."));

    findings::coverage_section(&mut out, &analysis);
    findings::metrics_section(&mut out, &analysis);
    out.push_str(&report::open_questions(feature, "Open Questions"));
    out.push_str(&sources(call));
    out
}
