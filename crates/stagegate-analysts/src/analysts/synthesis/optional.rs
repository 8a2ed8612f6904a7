//! Stage C's optional artifacts, written valid for their format: `coverage_report.html` (a
//! small self-contained page with the coverage table) and `security_scan.json` (the security
//! findings and the risk register).

use serde::Serialize;

use crate::analysts::Call;
use crate::analysts::findings::{self, Lens};
use crate::analysts::risk;

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(character),
        }
    }
    out
}

pub(crate) fn coverage_html(call: &Call<'_>) -> String {
    let analysis = findings::analyze(&call.feature);
    let mut rows = String::new();
    for row in &analysis.coverage.rows {
        let covered = !row.tasks.is_empty();
        rows.push_str(&format!(
            "<tr class=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            if covered { "covered" } else { "gap" },
            escape(&row.id),
            escape(&row.summary),
            if covered { "yes" } else { "no" },
            escape(&row.tasks.join(", "))
        ));
    }
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Coverage: {name}</title>\n<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #999;padding:4px 8px;text-align:left}}tr.gap td{{background:#fdd}}</style>\n</head>\n<body>\n<h1>Requirement coverage: {name}</h1>\n<p>{percent:.0}% of {total} requirements have at least one task; {tasks} tasks in all.</p>\n<table>\n<thead><tr><th>Requirement</th><th>Summary</th><th>Has task</th><th>Tasks</th></tr></thead>\n<tbody>\n{rows}</tbody>\n</table>\n</body>\n</html>\n",
        name = escape(&call.feature.name),
        percent = analysis.coverage.percent(),
        total = analysis.coverage.rows.len(),
        tasks = analysis.tasks.len(),
    )
}

#[derive(Serialize)]
struct SecurityScan<'a> {
    feature: &'a str,
    tool: &'static str,
    findings: Vec<SecurityFinding<'a>>,
    risks: Vec<risk::Risk>,
}

#[derive(Serialize)]
struct SecurityFinding<'a> {
    id: &'a str,
    category: &'static str,
    severity: &'static str,
    location: &'a str,
    summary: &'a str,
    recommendation: &'a str,
}

pub(crate) fn security_json(call: &Call<'_>) -> String {
    let analysis = findings::analyze(&call.feature);
    let scan = SecurityScan {
        feature: &call.feature.name,
        tool: "stagegate builtin security-reviewer",
        findings: findings::prioritized(&analysis.findings)
            .into_iter()
            .filter(|finding| finding.seen_by(Lens::Security))
            .map(|finding| SecurityFinding {
                id: &finding.id,
                category: finding.category.as_str(),
                severity: finding.severity.as_str(),
                location: &finding.location,
                summary: &finding.summary,
                recommendation: &finding.recommendation,
            })
            .collect(),
        risks: risk::risks(&call.feature.spec),
    };
    let mut text = serde_json::to_string_pretty(&scan).unwrap_or_else(|_| "{}".to_owned());
    text.push('\n');
    text
}
