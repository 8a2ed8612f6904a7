//! `solution-architect`: components derived from the stories, a data model from the key
//! entities, interfaces from the requirements' verbs ("MUST let/allow/provide/store/send…"),
//! the data flow, and the alternatives weighed with their trade-offs.
//!
//! The derivations are also what the plan and `data-model.md` synthesizers write, so the
//! architecture in the artifacts is the one the architect proposed.

use crate::analysts::confidence::Confidence;
use crate::analysts::{Call, report, traceability};
use crate::markdown;
use crate::speckit::{Entity, Feature, Spec};
use crate::text;

/// A component: one per story, plus cross-cutting ones the requirements call for.
pub(crate) struct Component {
    pub(crate) name: String,
    pub(crate) origin: String,
    pub(crate) responsibilities: String,
    pub(crate) requirements: Vec<String>,
}

/// The entities a text mentions (by name, singular or plural, any case).
pub(crate) fn entities_in<'a>(spec: &'a Spec, text: &str) -> Vec<&'a Entity> {
    let lower = text.to_lowercase();
    spec.entities
        .iter()
        .filter(|entity| {
            let name = entity.name.to_lowercase();
            text::contains_word(&lower, &name) || text::contains_word(&lower, &format!("{name}s"))
        })
        .collect()
}

/// Cross-cutting concerns: (words that call for it, component name, responsibility).
const CROSS_CUTTING: &[(&[&str], &str, &str)] = &[
    (
        &[
            "sign in",
            "signed-in",
            "account",
            "permission",
            "admin",
            "access",
            "login",
            "owner",
        ],
        "Access control",
        "who may see and change what: sessions, roles, ownership checks",
    ),
    (
        &["upload", "file", "storage", "store", "image", "attachment"],
        "File storage",
        "storing uploaded files and serving them back",
    ),
    (
        &["notify", "notification", "email", "send"],
        "Notification delivery",
        "producing and delivering notifications",
    ),
    (
        &["record", "history", "audit", "log"],
        "Audit log",
        "an append-only record of who did what and when",
    ),
    (
        &["search", "filter", "sort"],
        "Search and listing",
        "queries over the stored records",
    ),
    (
        &["page", "browser", "screen", "view", "ui", "button"],
        "User interface",
        "the pages and forms users work in",
    ),
];

pub(crate) fn components(spec: &Spec) -> Vec<Component> {
    let traces = traceability::trace(spec);
    let mut components = Vec::new();
    // A story's component is named after the entities its title names that no earlier story's
    // component owns ("Comment on photos" → "Comment service"), else after the title.
    let mut owned: Vec<String> = Vec::new();
    for story in &spec.stories {
        let mentioned: Vec<String> = entities_in(spec, &story.title)
            .iter()
            .map(|entity| entity.name.clone())
            .filter(|name| !owned.contains(name))
            .collect();
        owned.extend(mentioned.iter().cloned());
        let name = if mentioned.is_empty() {
            format!("{} service", story.title)
        } else {
            format!("{} service", mentioned.join(" & "))
        };
        let requirements: Vec<String> = traces
            .iter()
            .filter(|trace| {
                trace.requirement.id.starts_with("FR-")
                    && trace
                        .stories
                        .first()
                        .is_some_and(|first| first.number == story.number)
            })
            .map(|trace| trace.requirement.id.clone())
            .collect();
        components.push(Component {
            name,
            origin: format!("{} ({})", story.label(), story.title),
            responsibilities: text::truncate(
                crate::analysts::requirements::first_sentence(&story.narrative),
                160,
            ),
            requirements,
        });
    }
    for (words, name, responsibility) in CROSS_CUTTING {
        let requirements: Vec<String> = spec
            .requirements
            .iter()
            .filter(|requirement| {
                let lower = requirement.text.to_lowercase();
                words.iter().any(|word| text::contains_word(&lower, word))
            })
            .map(|requirement| requirement.id.clone())
            .collect();
        if !requirements.is_empty() {
            components.push(Component {
                name: (*name).to_owned(),
                origin: "cross-cutting".to_owned(),
                responsibilities: (*responsibility).to_owned(),
                requirements,
            });
        }
    }
    components
}

/// An operation a requirement asks for.
pub(crate) struct Interface {
    pub(crate) requirement: String,
    pub(crate) actor: String,
    pub(crate) operation: String,
    pub(crate) kind: &'static str,
}

/// Verbs and the kind of interface they call for.
const VERB_KINDS: &[(&str, &str)] = &[
    ("create", "command"),
    ("rename", "command"),
    ("delete", "command"),
    ("remove", "command"),
    ("update", "command"),
    ("edit", "command"),
    ("upload", "command"),
    ("post", "command"),
    ("revoke", "command"),
    ("accept", "command"),
    ("submit", "command"),
    ("store", "storage"),
    ("keep", "storage"),
    ("record", "storage"),
    ("save", "storage"),
    ("show", "query"),
    ("serve", "query"),
    ("display", "query"),
    ("list", "query"),
    ("view", "query"),
    ("search", "query"),
    ("provide", "query"),
    ("send", "event"),
    ("notify", "event"),
    ("email", "event"),
    ("publish", "event"),
    ("strip", "policy"),
    ("refuse", "policy"),
    ("reject", "policy"),
    ("validate", "policy"),
    ("limit", "policy"),
];

fn is_verb(word: &str) -> bool {
    let lower = word.to_lowercase();
    VERB_KINDS.iter().any(|(verb, _)| lower.starts_with(verb))
}

/// Interfaces from "ACTOR MUST [be able to] [let/allow X] VERB …".
pub(crate) fn interfaces(spec: &Spec) -> Vec<Interface> {
    let mut found = Vec::new();
    for requirement in &spec.requirements {
        let plain = &requirement.text;
        let Some(at) = plain.find("MUST").or_else(|| plain.find("SHOULD")) else {
            continue;
        };
        let mut actor = plain[..at].trim().to_owned();
        let keyword = if plain[at..].starts_with("MUST") {
            4
        } else {
            6
        };
        let mut rest: String = plain[at + keyword..].trim().to_owned();
        for opening in ["NOT ", "be able to "] {
            if let Some(after) = rest.strip_prefix(opening) {
                rest = after.to_owned();
            }
        }
        for opening in ["allow ", "let ", "enable "] {
            if let Some(after) = rest.strip_prefix(opening) {
                // "let a signed-in team member create …": the member is the actor.
                let words: Vec<&str> = after.split_whitespace().collect();
                let verb = words
                    .iter()
                    .position(|word| is_verb(word))
                    .filter(|at| *at >= 1);
                rest = match verb {
                    Some(position) => {
                        actor = words[..position].join(" ");
                        words[position..].join(" ")
                    }
                    None => after.to_owned(),
                };
                break;
            }
        }
        let rest = rest.as_str();
        let first = rest.split_whitespace().next().unwrap_or("").to_lowercase();
        let kind = VERB_KINDS
            .iter()
            .find(|(verb, _)| first.starts_with(verb))
            .map_or("operation", |(_, kind)| *kind);
        let operation: String = rest
            .split([';', '.'])
            .next()
            .unwrap_or(rest)
            .split_whitespace()
            .take(12)
            .collect::<Vec<_>>()
            .join(" ");
        found.push(Interface {
            requirement: requirement.id.clone(),
            actor: if actor.is_empty() {
                "System".to_owned()
            } else {
                actor
            },
            operation,
            kind,
        });
    }
    found
}

/// An entity with fields and relationships read from its description.
pub(crate) struct EntityModel {
    pub(crate) name: String,
    pub(crate) description: String,
    pub(crate) fields: Vec<String>,
    pub(crate) relationships: Vec<String>,
    /// Requirements mentioning the entity (validation rules, states).
    pub(crate) requirements: Vec<String>,
}

/// Fields from "has its uploader, upload time and size" / "records who created it"; the
/// relationships from other entities named in the description.
pub(crate) fn entity_models(spec: &Spec) -> Vec<EntityModel> {
    spec.entities
        .iter()
        .map(|entity| {
            let lower = entity.description.to_lowercase();
            let mut fields = vec!["id".to_owned()];
            // "records who created and revoked it" → created_by, revoked_by.
            if let Some(at) = lower.find("records who ") {
                let clause = lower[at + "records who ".len()..]
                    .split([';', '.'])
                    .next()
                    .unwrap_or("");
                for verb in clause.split([',', ' ']).filter(|word| word.ends_with("ed")) {
                    fields.push(format!("{verb}_by"));
                    fields.push(format!("{verb}_at"));
                }
            }
            for opening in ["has its ", "has a ", "has an ", "has ", "with its "] {
                let mut start = 0;
                while let Some(offset) = lower[start..].find(opening) {
                    let at = start + offset + opening.len();
                    let clause = lower[at..].split([';', '.']).next().unwrap_or("");
                    for part in clause.split([',']).flat_map(|part| part.split(" and ")) {
                        let field = part
                            .trim()
                            .trim_start_matches("one or more ")
                            .trim_start_matches("its ")
                            .trim_start_matches("a ")
                            .trim_start_matches("an ")
                            .trim_start_matches("the ")
                            .trim();
                        if !field.is_empty() && field.split_whitespace().count() <= 4 {
                            let field = field.replace([' ', '-'], "_");
                            if !fields.contains(&field) {
                                fields.push(field);
                            }
                        }
                    }
                    start = at;
                }
            }
            let relationships: Vec<String> = spec
                .entities
                .iter()
                .filter(|other| other.name != entity.name)
                .filter_map(|other| {
                    let name = other.name.to_lowercase();
                    let position = lower.find(&name)?;
                    let before = &lower[..position];
                    let plural = lower[position + name.len()..].starts_with('s');
                    let cardinality = if plural
                        || before.ends_with("one or more ")
                        || before.ends_with("many ")
                    {
                        "has many"
                    } else if before.ends_with("one ") || before.ends_with("a ") {
                        "belongs to one"
                    } else {
                        "refers to"
                    };
                    Some(format!("{cardinality} {}", other.name))
                })
                .collect();
            let requirements = spec
                .requirements
                .iter()
                .filter(|requirement| {
                    let lower = requirement.text.to_lowercase();
                    let name = entity.name.to_lowercase();
                    lower.contains(&name)
                })
                .map(|requirement| requirement.id.clone())
                .collect();
            EntityModel {
                name: entity.name.clone(),
                description: entity.description.clone(),
                fields,
                relationships,
                requirements,
            }
        })
        .collect()
}

/// A design alternative: the options, the choice and its trade-off.
pub(crate) struct Alternative {
    pub(crate) topic: &'static str,
    pub(crate) options: &'static str,
    pub(crate) choice: &'static str,
    pub(crate) trade_off: &'static str,
}

/// Alternatives the requirements raise (keyword rules), plus the overall structure.
pub(crate) fn alternatives(feature: &Feature) -> Vec<Alternative> {
    let all: String = feature
        .spec
        .requirements
        .iter()
        .map(|requirement| requirement.text.to_lowercase())
        .collect::<Vec<_>>()
        .join(" ");
    let mentions = |words: &[&str]| words.iter().any(|word| all.contains(word));
    let mut found = vec![Alternative {
        topic: "Overall structure",
        options: "one deployable service with modules / separate services per component",
        choice: "one service with a module per component",
        trade_off: "simpler to build, test and deploy now; a module boundary can become a service boundary later if load demands it",
    }];
    if mentions(&["upload", "file", "photo", "image", "attachment"]) {
        found.push(Alternative {
            topic: "File storage",
            options: "files in the database / object storage with metadata in the database / local disk",
            choice: "object storage (local disk in development) with metadata rows in the database",
            trade_off: "cheap, scalable storage and streaming reads, at the cost of keeping two stores consistent (write the file first, then the row)",
        });
    }
    if mentions(&["link", "token", "share"]) {
        found.push(Alternative {
            topic: "Shareable links",
            options: "random opaque tokens stored server-side / signed self-contained URLs",
            choice: "random opaque tokens stored server-side",
            trade_off: "revocation and expiry take effect at once because every request checks the store; one lookup per request",
        });
    }
    if mentions(&["notify", "notification", "email"]) {
        found.push(Alternative {
            topic: "Notifications",
            options: "in-app only / e-mail / both, delivered synchronously or from a queue",
            choice: "an outbox table drained by a background worker, channel per the open clarification",
            trade_off: "requests stay fast and delivery retries on failure; notifications arrive with a small delay",
        });
    }
    if mentions(&["thumbnail", "resize", "convert", "process"]) {
        found.push(Alternative {
            topic: "Derived media (thumbnails)",
            options: "generate on upload / generate lazily on first view",
            choice: "generate on upload in a background job",
            trade_off: "album pages never wait for image processing; uploads finish a moment before thumbnails appear",
        });
    }
    if mentions(&["history", "audit", "record"]) {
        found.push(Alternative {
            topic: "Audit history",
            options: "an append-only event table / change columns on each row",
            choice: "an append-only event table",
            trade_off: "complete history that admins can read; one more write per change",
        });
    }
    found
}

pub(crate) fn analyze(call: &Call<'_>) -> String {
    let feature = &call.feature;
    let spec = &feature.spec;
    let mut out = report::header(call, "Solution Architecture");

    out.push_str("## Components\n\n");
    let components = components(spec);
    if components.is_empty() {
        out.push_str("No stories or requirements to derive components from.\n\n");
    } else {
        let rows: Vec<Vec<String>> = components
            .iter()
            .map(|component| {
                vec![
                    component.name.clone(),
                    component.origin.clone(),
                    component.responsibilities.clone(),
                    component.requirements.join(", "),
                ]
            })
            .collect();
        markdown::table(
            &mut out,
            &[
                "Component",
                "Derived from",
                "Responsibilities",
                "Requirements",
            ],
            &rows,
        );
        out.push('\n');
    }

    out.push_str("## Data Model\n\n");
    let models = entity_models(spec);
    if models.is_empty() {
        out.push_str(
            "The spec names no key entities; the data model must be derived during design.\n\n",
        );
    }
    for model in &models {
        out.push_str(&format!(
            "- **{}**: {} Fields: {}. Relationships: {}.\n",
            model.name,
            model.description,
            model.fields.join(", "),
            if model.relationships.is_empty() {
                "none stated".to_owned()
            } else {
                model.relationships.join("; ")
            }
        ));
    }
    if !models.is_empty() {
        out.push('\n');
    }

    out.push_str("## Interfaces\n\n");
    let interfaces = interfaces(spec);
    if interfaces.is_empty() {
        out.push_str("No \"MUST\" requirements to derive interfaces from.\n\n");
    } else {
        let rows: Vec<Vec<String>> = interfaces
            .iter()
            .map(|interface| {
                vec![
                    interface.requirement.clone(),
                    interface.actor.clone(),
                    interface.kind.to_owned(),
                    interface.operation.clone(),
                ]
            })
            .collect();
        markdown::table(
            &mut out,
            &["Requirement", "Actor", "Kind", "Operation"],
            &rows,
        );
        out.push('\n');
    }

    out.push_str("## Data Flow\n\n");
    let flows: Vec<String> = spec
        .stories
        .iter()
        .enumerate()
        .map(|(index, story)| {
            // The first components are the stories', in story order.
            let service = components
                .get(index)
                .map_or_else(|| "service".to_owned(), |component| component.name.clone());
            format!(
                "{}: user → user interface → {service} → storage{}",
                story.label(),
                if story.narrative.to_lowercase().contains("notif") {
                    " → notification delivery"
                } else {
                    ""
                }
            )
        })
        .collect();
    out.push_str(&report::bullets(
        &flows,
        "No stories to derive a data flow from.",
    ));

    out.push_str("## Alternatives and Trade-offs\n\n");
    let rows: Vec<Vec<String>> = alternatives(feature)
        .iter()
        .map(|alternative| {
            vec![
                alternative.topic.to_owned(),
                alternative.options.to_owned(),
                alternative.choice.to_owned(),
                alternative.trade_off.to_owned(),
            ]
        })
        .collect();
    markdown::table(
        &mut out,
        &["Decision", "Options", "Chosen", "Trade-off"],
        &rows,
    );
    out.push('\n');
    out.push_str("## Patterns\n\n- Layering: user interface → services → repositories → storage; services own the rules of their requirements.\n- Ownership and access checks in one place (the access-control component), called by every service.\n- Background work (thumbnails, notifications) through a queue so that requests stay fast.\n\n");
    out.push_str(&report::open_questions(feature, "Open Questions"));
    out.push_str(&report::reading_notes(feature));
    let mut confidence = Confidence::for_feature(feature);
    if spec.entities.is_empty() {
        confidence.subtract(0.10, "no key entities".to_owned());
    }
    out.push_str(&confidence.render());
    out
}
