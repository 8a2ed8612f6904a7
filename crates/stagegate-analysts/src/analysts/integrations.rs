//! `integrations-engineer`: the integration points (outside systems and internal boundaries),
//! API contracts derived from the requirements' operations, error handling from the refusals
//! and edge cases, and the configuration the requirements' numbers become.

use crate::analysts::architecture::{self, Interface};
use crate::analysts::confidence::Confidence;
use crate::analysts::core_implementation::snake;
use crate::analysts::{Call, report, risk};
use crate::markdown;
use crate::speckit::Spec;
use crate::text;

/// An HTTP-style contract for an interface: method, path and the success answer.
pub(crate) fn contract(spec: &Spec, interface: &Interface) -> (String, String, String) {
    let lower = interface.operation.to_lowercase();
    let resource = architecture::entities_in(spec, &interface.operation)
        .first()
        .map_or_else(|| "resource".to_owned(), |entity| snake(&entity.name));
    let collection = format!("/{resource}s");
    let (method, path, answer) = match interface.kind {
        "query" => (
            "GET",
            format!("{collection}/{{id}}"),
            "200 with the record(s)",
        ),
        "event" => (
            "(event)",
            format!("{resource}.changed"),
            "queued for delivery",
        ),
        "policy" => (
            "(rule)",
            collection.clone(),
            "applied on the affected requests",
        ),
        _ if lower.starts_with("delete")
            || lower.starts_with("remove")
            || lower.starts_with("revoke") =>
        {
            ("DELETE", format!("{collection}/{{id}}"), "204")
        }
        _ if lower.starts_with("rename")
            || lower.starts_with("update")
            || lower.starts_with("edit") =>
        {
            (
                "PATCH",
                format!("{collection}/{{id}}"),
                "200 with the updated record",
            )
        }
        _ => ("POST", collection.clone(), "201 with the created record"),
    };
    (method.to_owned(), path, answer.to_owned())
}

/// `25 MB`, `100 files`, `2,000 characters` → configuration keys with their default.
pub(crate) fn settings(spec: &Spec) -> Vec<(String, String, String)> {
    let mut found = Vec::new();
    for requirement in &spec.requirements {
        let words: Vec<&str> = requirement.text.split_whitespace().collect();
        for (index, word) in words.iter().enumerate() {
            let number: String = word.chars().filter(|c| c.is_ascii_digit()).collect();
            if number.is_empty() || !word.chars().next().is_some_and(|c| c.is_ascii_digit()) {
                continue;
            }
            let unit = words
                .get(index + 1)
                .map(|unit| {
                    unit.trim_matches(|c: char| !c.is_alphanumeric())
                        .to_lowercase()
                })
                .unwrap_or_default();
            if unit.is_empty() || unit.chars().all(|c| c.is_ascii_digit()) {
                continue;
            }
            found.push((
                format!(
                    "{}.max_{}",
                    requirement.id.to_lowercase().replace('-', "_"),
                    snake(&unit)
                ),
                format!("{number} {unit}"),
                requirement.id.clone(),
            ));
        }
    }
    found
}

pub(crate) fn analyze(call: &Call<'_>) -> String {
    let feature = &call.feature;
    let spec = &feature.spec;
    let mut out = report::header(call, "Integrations Plan");
    out.push_str("## Integration Points\n\n");
    let points: Vec<String> = risk::risks(spec)
        .iter()
        .filter(|risk| {
            risk.category.starts_with("External") || risk.category.starts_with("Authentication")
        })
        .map(|risk| format!("{}: {}", risk.category, risk.evidence.join(", ")))
        .chain(
            architecture::components(spec)
                .iter()
                .filter(|component| component.origin == "cross-cutting")
                .map(|component| {
                    format!(
                        "{} (internal boundary): {}",
                        component.name,
                        component.requirements.join(", ")
                    )
                }),
        )
        .collect();
    out.push_str(&report::bullets(
        &points,
        "No outside systems are named; the feature integrates only with its own storage.",
    ));

    out.push_str("## API Contracts\n\n");
    let interfaces = architecture::interfaces(spec);
    if interfaces.is_empty() {
        out.push_str("No operations could be derived from the requirements.\n\n");
    } else {
        let rows: Vec<Vec<String>> = interfaces
            .iter()
            .map(|interface| {
                let (method, path, answer) = contract(spec, interface);
                vec![
                    interface.requirement.clone(),
                    method,
                    path,
                    text::truncate(&interface.operation, 90),
                    answer,
                ]
            })
            .collect();
        markdown::table(
            &mut out,
            &[
                "Requirement",
                "Method",
                "Path / event",
                "Operation",
                "Success",
            ],
            &rows,
        );
        out.push_str("\nNames follow the spec's entities; every endpoint checks access first (401 unauthenticated, 403 not allowed, 404 unknown or not visible).\n\n");
    }

    out.push_str("## Error Handling\n\n");
    let mut errors: Vec<String> = spec
        .requirements
        .iter()
        .filter(|requirement| {
            let lower = requirement.text.to_lowercase();
            ["refuse", "reject", "error", "invalid", "limit", "stop"]
                .iter()
                .any(|word| lower.contains(word))
        })
        .map(|requirement| {
            format!(
                "{}: answer 4xx with a message naming the rule (\"{}\")",
                requirement.id,
                text::truncate(&requirement.text, 100)
            )
        })
        .collect();
    errors.extend(spec.edge_cases.iter().enumerate().map(|(index, edge)| {
        format!(
            "Edge case E{}: {}",
            index + 1,
            text::truncate(&edge.text, 160)
        )
    }));
    errors.push("Outside systems: timeouts, retries with backoff, and an outbox so a failed delivery is retried rather than lost.".to_owned());
    out.push_str(&report::bullets(&errors, ""));

    out.push_str("## Configuration\n\n");
    let settings = settings(spec);
    if settings.is_empty() {
        out.push_str("No numeric limits in the requirements to make configurable.\n\n");
    } else {
        let rows: Vec<Vec<String>> = settings
            .iter()
            .map(|(key, value, source)| vec![key.clone(), value.clone(), source.clone()])
            .collect();
        markdown::table(&mut out, &["Key", "Default", "From"], &rows);
        out.push('\n');
    }
    out.push_str(&report::open_questions(feature, "Open Questions"));
    out.push_str(&report::reading_notes(feature));
    out.push_str(&Confidence::for_feature(feature).render());
    out
}
