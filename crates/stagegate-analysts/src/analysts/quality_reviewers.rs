//! Stage C's four reviewers. Each reports its share of one shared analysis
//! ([`findings::analyze`]), so that together they cover `/speckit.analyze`'s six categories
//! without contradicting each other:
//! - completeness: coverage gaps and underspecification;
//! - consistency: duplication, inconsistency and ambiguity;
//! - feasibility: constitution alignment, blocked or misordered tasks, open decisions;
//! - security: everything touching access, privacy or secrets, plus the risk taxonomy.
//!
//! Every report carries the coverage table, the unmapped tasks and the metrics block.

use crate::analysts::confidence::Confidence;
use crate::analysts::findings::{self, Analysis, Finding, Lens};
use crate::analysts::risk::{self, Severity};
use crate::analysts::{Call, report};

pub(crate) fn completeness(call: &Call<'_>) -> String {
    write(call, Lens::Completeness, "Completeness Review")
}

pub(crate) fn feasibility(call: &Call<'_>) -> String {
    write(call, Lens::Feasibility, "Feasibility Review")
}

pub(crate) fn security(call: &Call<'_>) -> String {
    write(call, Lens::Security, "Security Review")
}

pub(crate) fn consistency(call: &Call<'_>) -> String {
    write(call, Lens::Consistency, "Consistency Review")
}

fn write(call: &Call<'_>, lens: Lens, title: &str) -> String {
    let feature = &call.feature;
    let analysis = findings::analyze(feature);
    let mut out = report::header(call, title);
    let mine: Vec<&Finding> = findings::prioritized(&analysis.findings)
        .into_iter()
        .filter(|finding| finding.seen_by(lens))
        .collect();
    out.push_str("## Findings\n\n");
    out.push_str(match lens {
        Lens::Completeness => "Scope: coverage gaps and underspecification.\n\n",
        Lens::Consistency => "Scope: duplication, inconsistency and ambiguity.\n\n",
        Lens::Feasibility => "Scope: constitution alignment, blocked or misordered tasks and open decisions.\n\n",
        Lens::Security => "Scope: findings touching access control, privacy and secrets, and the risk taxonomy.\n\n",
    });
    if mine.is_empty() {
        out.push_str("No findings in this scope.\n\n");
    } else {
        findings::findings_table(&mut out, &mine);
        out.push('\n');
    }
    if lens == Lens::Security {
        out.push_str("## Security Risks\n\n");
        let risks: Vec<risk::Risk> = risk::risks(&feature.spec)
            .into_iter()
            .filter(|risk| risk.severity <= Severity::High)
            .collect();
        if risks.is_empty() {
            out.push_str("No HIGH or CRITICAL risk category is triggered by the spec.\n\n");
        } else {
            risk::risk_table(&mut out, &risks);
            out.push('\n');
        }
    }
    if lens == Lens::Feasibility && !analysis.has_constitution {
        out.push_str("No constitution was among the inputs: constitution alignment was checked only against the plan's own Constitution Check.\n\n");
    }
    findings::coverage_section(&mut out, &analysis);
    findings::metrics_section(&mut out, &analysis);
    out.push_str(&report::reading_notes(feature));
    out.push_str(&confidence(feature, &analysis).render());
    out
}

/// Stage C's confidence: the common formula, lowered by 0.02 per critical finding (at most
/// 0.10) and by 0.10 when tasks.md is missing.
pub(crate) fn confidence(feature: &crate::speckit::Feature, analysis: &Analysis) -> Confidence {
    let mut confidence = Confidence::for_feature(feature);
    let critical = analysis.critical();
    confidence.subtract(
        (0.02 * critical as f64).min(0.10),
        format!("{critical} critical finding(s)"),
    );
    if !analysis.has_tasks {
        confidence.subtract(0.10, "no tasks.md to check coverage against".to_owned());
    }
    confidence
}
