//! `integrations-engineer`: the integration points (outside systems and internal boundaries),
//! API contracts derived from the requirements' operations, error handling from the refusals
//! and edge cases, and the configuration the requirements' numbers become.

use crate::analysts::architecture::{self, Interface};
use crate::analysts::confidence::Confidence;
use crate::analysts::core_implementation::snake;
use crate::analysts::{Call, report, risk};
use crate::markdown;
use crate::speckit::{Feature, Spec};
use crate::text;

/// Where the inputs say the feature has a network API (`spec.md:12`), if they do.
pub(crate) fn api_stated(feature: &Feature) -> Option<String> {
    const WORDS: &[&str] = &[
        "API",
        "REST",
        "HTTP",
        "endpoint",
        "endpoints",
        "gRPC",
        "GraphQL",
    ];
    feature.texts.iter().find_map(|file| {
        file.content.lines().enumerate().find_map(|(index, line)| {
            line.split(|c: char| !c.is_alphanumeric())
                .any(|word| WORDS.contains(&word))
                .then(|| format!("{}:{}", file.name, index + 1))
        })
    })
}

/// An HTTP-style contract for an interface: method, path and the success answer — only when
/// the inputs state an API and the requirement names a key entity; else what is missing, as
/// NEEDS CLARIFICATION (a made-up `POST /resources` would read as a decision).
pub(crate) fn contract(
    feature: &Feature,
    api: bool,
    interface: &Interface,
) -> (String, String, String) {
    let unknown = |why: &str| {
        (
            "NEEDS CLARIFICATION".to_owned(),
            why.to_owned(),
            "—".to_owned(),
        )
    };
    if !api {
        return unknown("the inputs state no API");
    }
    let spec = &feature.spec;
    let lower = interface.operation.to_lowercase();
    let Some(entity) = architecture::entities_in(spec, &interface.operation)
        .first()
        .copied()
    else {
        return unknown("the requirement names no key entity");
    };
    let resource = snake(&entity.name);
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
        _ if ["create", "add", "upload", "submit", "register", "post"]
            .iter()
            .any(|verb| lower.starts_with(verb)) =>
        {
            ("POST", collection.clone(), "201 with the created record")
        }
        _ => return unknown("the operation maps to no create/read/update/delete"),
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
        let api = api_stated(&call.feature).is_some();
        let rows: Vec<Vec<String>> = interfaces
            .iter()
            .map(|interface| {
                let (method, path, answer) = contract(&call.feature, api, interface);
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
        match api_stated(&call.feature) {
            Some(source) => out.push_str(&format!(
                "\nAn API is stated at {source}; paths follow the spec's entities, the protocol's details are for the design.\n\n"
            )),
            None => out.push_str("\nThe inputs state no API (no API, HTTP, REST, gRPC or endpoint), so no contract is proposed.\n\n"),
        }
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
