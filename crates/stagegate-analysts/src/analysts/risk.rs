//! `risk-compliance-analyst`: risks by a fixed taxonomy, each found by keyword rules over the
//! requirements, success criteria, entities and edge cases, with a severity and a mitigation;
//! the spec's edge cases with the requirement that covers each; security, privacy,
//! performance and accessibility notes.
//!
//! Taxonomy (category — base severity — what triggers it):
//! - Authentication and access control — HIGH — sign-in, accounts, permissions, roles, admins,
//!   public or link-based access ("without requiring an account"); CRITICAL when public access
//!   and access rules meet in one requirement.
//! - Personal data and privacy — HIGH — personal data, e-mail addresses, location/GPS/EXIF,
//!   names, phone numbers, consent, GDPR.
//! - Money and currency — CRITICAL — payments, prices, currencies, invoices, refunds.
//! - External integrations — MEDIUM — e-mail/SMS delivery, webhooks, third-party APIs, OAuth.
//! - Concurrency — MEDIUM — simultaneous edits, "while someone is viewing", races, locks.
//! - Stated performance targets — MEDIUM — a time or percentage target (`within 2 seconds`,
//!   `95%`); HIGH when under a second.
//! - Data migration and retention — HIGH — migration, import/export, retention, recovery,
//!   deletion of user data.
//!
//! A risk touching a requirement with an open `[NEEDS CLARIFICATION]` is raised one level.

use serde::Serialize;

use crate::analysts::confidence::Confidence;
use crate::analysts::{Call, report};
use crate::markdown;
use crate::speckit::Spec;
use crate::text;

/// `/speckit.analyze`'s severities, most severe first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub(crate) enum Severity {
    Critical,
    High,
    Medium,
    Low,
}

impl Severity {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "CRITICAL",
            Severity::High => "HIGH",
            Severity::Medium => "MEDIUM",
            Severity::Low => "LOW",
        }
    }

    pub(crate) fn parse(text: &str) -> Option<Severity> {
        match text.trim().trim_matches('*').to_uppercase().as_str() {
            "CRITICAL" => Some(Severity::Critical),
            "HIGH" => Some(Severity::High),
            "MEDIUM" => Some(Severity::Medium),
            "LOW" => Some(Severity::Low),
            _ => None,
        }
    }

    fn raised(self) -> Severity {
        match self {
            Severity::Critical | Severity::High => Severity::Critical,
            Severity::Medium => Severity::High,
            Severity::Low => Severity::Medium,
        }
    }
}

struct Rule {
    category: &'static str,
    severity: Severity,
    words: &'static [&'static str],
    mitigation: &'static str,
}

const RULES: &[Rule] = &[
    Rule {
        category: "Authentication and access control",
        severity: Severity::High,
        words: &[
            "sign in",
            "signed-in",
            "sign-in",
            "login",
            "log in",
            "password",
            "account",
            "permission",
            "role",
            "admin",
            "admins",
            "authenticat",
            "authoriz",
            "access",
            "without requiring an account",
            "anyone",
            "public",
            "session",
            "token",
        ],
        mitigation: "Check access on every operation the requirements name, in one place (deny by default); test each role the spec names and the anonymous case.",
    },
    Rule {
        category: "Personal data and privacy",
        severity: Severity::High,
        words: &[
            "personal",
            "email address",
            "e-mail address",
            "location",
            "gps",
            "exif",
            "phone",
            "address",
            "privacy",
            "gdpr",
            "consent",
            "name",
        ],
        mitigation: "Inventory the personal fields the spec names; collect and expose only what the stories need; state retention and deletion.",
    },
    Rule {
        category: "Money and currency",
        severity: Severity::Critical,
        words: &[
            "payment",
            "price",
            "currency",
            "invoice",
            "billing",
            "refund",
            "charge",
            "money",
            "credit card",
        ],
        mitigation: "Represent amounts exactly (never binary floating point) and make money-moving operations idempotent; test the amounts the spec gives.",
    },
    Rule {
        category: "External integrations",
        severity: Severity::Medium,
        words: &[
            "email",
            "e-mail",
            "sms",
            "webhook",
            "third-party",
            "third party",
            "external",
            "oauth",
            "api",
            "integration",
            "notification",
            "notify",
        ],
        mitigation: "Put each outside system the spec names behind an interface with timeouts and a stated behaviour when it is down; fake it in tests.",
    },
    Rule {
        category: "Concurrency",
        severity: Severity::Medium,
        words: &[
            "concurrent",
            "simultaneous",
            "same time",
            "while someone",
            "while",
            "race",
            "in parallel",
            "at once",
            "lock",
            "conflict",
            "interrupted",
        ],
        mitigation: "State the outcome of each concurrent change the spec names; test the interleavings named in the edge cases.",
    },
    Rule {
        category: "Stated performance targets",
        severity: Severity::Medium,
        words: &[
            "second",
            "seconds",
            "minute",
            "minutes",
            "millisecond",
            "ms",
            "%",
            "percent",
            "within",
            "under",
        ],
        mitigation: "Turn each stated target into an automated measurement with the spec's own numbers (percentile, data size).",
    },
    Rule {
        category: "Data migration and retention",
        severity: Severity::High,
        words: &[
            "migrat",
            "import",
            "export",
            "retention",
            "recover",
            "backup",
            "legacy",
            "deleted",
            "delete",
            "archive",
        ],
        mitigation: "State what deletion keeps and for how long; test recovery end to end.",
    },
];

/// One risk found.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Risk {
    pub(crate) id: String,
    pub(crate) category: &'static str,
    pub(crate) severity: Severity,
    /// Requirement ids, entity names or edge-case labels that triggered it.
    pub(crate) evidence: Vec<String>,
    pub(crate) mitigation: &'static str,
}

fn matches(rule: &Rule, lower: &str) -> bool {
    rule.words.iter().any(|word| {
        if rule.category == "Stated performance targets" {
            // A target needs a number next to its unit.
            return text::has_number(lower) && text::contains_word(lower, word);
        }
        if word.len() <= 5 && !word.contains(' ') {
            text::contains_word(lower, word)
        } else {
            lower.contains(word)
        }
    })
}

/// The risks of a spec, one per category that has evidence, in taxonomy order.
pub(crate) fn risks(spec: &Spec) -> Vec<Risk> {
    let mut found = Vec::new();
    for rule in RULES {
        let mut evidence = Vec::new();
        let mut clarification = false;
        let mut critical_access = false;
        for requirement in spec.requirements.iter().chain(&spec.success_criteria) {
            let lower = requirement.text.to_lowercase();
            if matches(rule, &lower) {
                evidence.push(requirement.id.clone());
                if lower.contains("needs clarification") {
                    clarification = true;
                }
                if rule.category.starts_with("Authentication")
                    && (lower.contains("without requiring an account") || lower.contains("anyone"))
                    && (lower.contains("stop") || lower.contains("revok"))
                {
                    critical_access = true;
                }
            }
        }
        if rule.category == "Stated performance targets" {
            // Only success criteria and requirements state targets; entities do not.
        } else {
            for entity in &spec.entities {
                let lower = format!("{} {}", entity.name, entity.description).to_lowercase();
                if matches(rule, &lower) {
                    evidence.push(format!("entity {}", entity.name));
                }
            }
        }
        for (index, edge) in spec.edge_cases.iter().enumerate() {
            if matches(rule, &edge.text.to_lowercase()) {
                evidence.push(format!("edge case {}", index + 1));
            }
        }
        if evidence.is_empty() {
            continue;
        }
        let mut severity = rule.severity;
        if rule.category == "Stated performance targets" {
            let sub_second = spec
                .success_criteria
                .iter()
                .chain(&spec.requirements)
                .any(|r| {
                    let lower = r.text.to_lowercase();
                    lower.contains(" ms") || lower.contains("millisecond")
                });
            if sub_second {
                severity = Severity::High;
            }
        }
        if critical_access {
            severity = Severity::Critical;
        }
        if clarification {
            severity = severity.raised();
        }
        evidence.truncate(12);
        found.push(Risk {
            id: format!("R{}", found.len() + 1),
            category: rule.category,
            severity,
            evidence,
            mitigation: rule.mitigation,
        });
    }
    found
}

/// The requirement whose key words best match an edge case, if any shares two.
pub(crate) fn covering_requirement(spec: &Spec, edge: &str) -> Option<String> {
    let words = text::keywords(edge);
    spec.requirements
        .iter()
        .map(|requirement| {
            let overlap = text::keywords(&requirement.text)
                .intersection(&words)
                .count();
            (overlap, requirement)
        })
        .filter(|(overlap, _)| *overlap >= 2)
        .max_by(|a, b| a.0.cmp(&b.0).then(b.1.line.cmp(&a.1.line)))
        .map(|(_, requirement)| requirement.id.clone())
}

pub(crate) fn risk_table(out: &mut String, risks: &[Risk]) {
    let rows: Vec<Vec<String>> = risks
        .iter()
        .map(|risk| {
            vec![
                risk.id.clone(),
                risk.category.to_owned(),
                risk.severity.as_str().to_owned(),
                risk.evidence.join(", "),
                risk.mitigation.to_owned(),
            ]
        })
        .collect();
    markdown::table(
        out,
        &["ID", "Category", "Severity", "Evidence", "Mitigation"],
        &rows,
    );
}

pub(crate) fn analyze(call: &Call<'_>) -> String {
    let feature = &call.feature;
    let spec = &feature.spec;
    let mut out = report::header(call, "Risk and Compliance Analysis");
    out.push_str("## Risks\n\n");
    out.push_str("Found by keyword rules over the taxonomy: authentication and access control, personal data and privacy, money and currency, external integrations, concurrency, stated performance targets, data migration and retention. A risk touching an open clarification is raised one level.\n\n");
    let risks = risks(spec);
    if risks.is_empty() {
        out.push_str("No risk category of the taxonomy is triggered by the spec.\n\n");
    } else {
        risk_table(&mut out, &risks);
        out.push('\n');
    }

    out.push_str("## Edge Cases\n\n");
    if spec.edge_cases.is_empty() {
        out.push_str("The spec lists no edge cases: add them (failure, empty, limit and concurrent cases) before planning.\n\n");
    } else {
        let rows: Vec<Vec<String>> = spec
            .edge_cases
            .iter()
            .enumerate()
            .map(|(index, edge)| {
                let (question, answer) = match edge.text.split_once('?') {
                    Some((question, answer)) if !answer.trim().is_empty() => {
                        (format!("{question}?"), answer.trim().to_owned())
                    }
                    _ => (
                        edge.text.clone(),
                        "not stated: decide and add to the spec".to_owned(),
                    ),
                };
                vec![
                    format!("E{}", index + 1),
                    text::truncate(&question, 140),
                    text::truncate(&answer, 140),
                    covering_requirement(spec, &edge.text)
                        .unwrap_or_else(|| "none: add a requirement or test".to_owned()),
                ]
            })
            .collect();
        markdown::table(
            &mut out,
            &["#", "Edge case", "Expected handling", "Covered by"],
            &rows,
        );
        out.push('\n');
    }

    let all_text = feature.text("spec.md").unwrap_or_default().to_lowercase();
    out.push_str("## Security and Privacy\n\n");
    let security: Vec<String> = risks
        .iter()
        .filter(|risk| {
            risk.category.starts_with("Authentication") || risk.category.starts_with("Personal")
        })
        .map(|risk| {
            format!(
                "{} ({}): {}",
                risk.category,
                risk.severity.as_str(),
                risk.evidence.join(", ")
            )
        })
        .collect();
    out.push_str(&report::bullets(
        &security,
        "No access-control or personal-data requirements were found; confirm that none apply.",
    ));
    out.push_str("## Performance\n\n");
    let targets: Vec<String> = spec
        .success_criteria
        .iter()
        .filter(|criterion| text::has_number(&criterion.text))
        .map(|criterion| format!("{}: {}", criterion.id, criterion.text))
        .collect();
    out.push_str(&report::bullets(
        &targets,
        "No measurable performance targets: add `SC-###` criteria with numbers.",
    ));
    out.push_str("## Accessibility\n\n");
    if ["accessib", "screen reader", "wcag", "keyboard"]
        .iter()
        .any(|word| all_text.contains(word))
    {
        out.push_str("The spec states accessibility needs; keep them as acceptance tests.\n\n");
    } else {
        out.push_str("LOW: the spec states no accessibility requirement; adopt WCAG 2.2 AA for the user interface (keyboard use, alt text, contrast) or record why not.\n\n");
    }
    out.push_str(&report::open_questions(feature, "Open Questions"));
    out.push_str(&report::reading_notes(feature));
    let mut confidence = Confidence::for_feature(feature);
    if spec.edge_cases.is_empty() {
        confidence.subtract(0.05, "no edge cases in the spec".to_owned());
    }
    out.push_str(&confidence.render());
    out
}
