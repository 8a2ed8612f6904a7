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
        &["upload", "attachment", "file"],
        "File storage",
        "storing the files the requirements name and serving them back",
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
                trace.requirement.is_functional()
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
    /// The spec's line that defines it.
    pub(crate) line: usize,
}

impl EntityModel {
    /// The fields, or the question to ask when the spec names none.
    pub(crate) fn fields_or_question(&self) -> String {
        if self.fields.is_empty() {
            format!(
                "NEEDS CLARIFICATION (spec.md:{} lists no attributes of {})",
                self.line, self.name
            )
        } else {
            self.fields.join(", ")
        }
    }
}

/// The attributes an entity's description lists: "has its uploader, upload time and size",
/// "attributes: name, due date", "(title, amount)", "records who created it" → `created_by`,
/// `created_at`; `、`-separated lists too. No field is added that the spec does not name (not
/// even an `id`): an empty list is reported as NEEDS CLARIFICATION.
pub(crate) fn entity_fields(description: &str) -> Vec<String> {
    let lower = description.to_lowercase();
    let mut fields: Vec<String> = Vec::new();
    let mut add = |field: &str| {
        let field = field
            .trim()
            .trim_start_matches("one or more ")
            .trim_start_matches("its ")
            .trim_start_matches("a ")
            .trim_start_matches("an ")
            .trim_start_matches("the ")
            .trim()
            .trim_matches(|c: char| !c.is_alphanumeric());
        if !field.is_empty() && field.split_whitespace().count() <= 4 {
            let field = field.replace([' ', '-'], "_");
            if !fields.contains(&field) {
                fields.push(field);
            }
        }
    };
    if let Some(at) = lower.find("records who ") {
        let clause = lower[at + "records who ".len()..]
            .split([';', '.'])
            .next()
            .unwrap_or("");
        for verb in clause.split([',', ' ']).filter(|word| word.ends_with("ed")) {
            add(&format!("{verb}_by"));
            add(&format!("{verb}_at"));
        }
    }
    let clause_end = [';', '.', '。', ')', '）'];
    for opening in [
        "has its ",
        "has a ",
        "has an ",
        "has ",
        "with its ",
        "attributes:",
        "attributes are ",
        "fields:",
        "includes ",
        "contains ",
        "consists of ",
        "tracks ",
        "属性:",
        "属性：",
        "項目:",
        "項目：",
    ] {
        let mut start = 0;
        while let Some(offset) = lower[start..].find(opening) {
            let at = start + offset + opening.len();
            let clause = lower[at..].split(clause_end).next().unwrap_or("");
            for part in clause
                .split([',', '、', '，'])
                .flat_map(|part| part.split(" and "))
            {
                add(part);
            }
            start = at;
        }
    }
    // "(title, amount, due date)": a parenthesized list.
    if let Some(open) = lower.find(['(', '（']) {
        let inner = lower[open..]
            .trim_start_matches(['(', '（'])
            .split([')', '）'])
            .next()
            .unwrap_or("");
        if inner.contains([',', '、']) {
            for part in inner.split([',', '、']) {
                add(part);
            }
        }
    }
    fields
}

/// Fields and relationships read from each entity's description.
pub(crate) fn entity_models(spec: &Spec) -> Vec<EntityModel> {
    spec.entities
        .iter()
        .map(|entity| {
            let lower = entity.description.to_lowercase();
            let fields = entity_fields(&entity.description);
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
                line: entity.line,
            }
        })
        .collect()
}

/// A design decision the inputs raise: the options, what was chosen (only when an existing
/// plan states it) and what to weigh. The built-in analysts never choose: a choice they made up
/// would read as a fact of the project.
pub(crate) struct Alternative {
    pub(crate) topic: &'static str,
    pub(crate) options: &'static str,
    pub(crate) choice: String,
    pub(crate) trade_off: &'static str,
    /// The requirements that raise it (`FR-004`), or where the choice was read.
    pub(crate) raised_by: String,
}

/// The decision left open, and where to make it.
pub(crate) const UNDECIDED: &str = "NEEDS CLARIFICATION (decide in research.md)";

/// Decisions a requirement's own words raise: (words, topic, options, what to weigh).
const DECISIONS: &[(&[&str], &str, &str, &str)] = &[
    (
        &["upload", "attachment", "file"],
        "File storage",
        "where the files' bytes live and where their metadata lives",
        "consistency between the bytes and their record; size limits; streaming",
    ),
    (
        &["link", "token", "share"],
        "Shareable links",
        "opaque tokens looked up on each use / signed self-contained links",
        "revocation and expiry take effect at once only with a lookup",
    ),
    (
        &["notify", "notification", "email", "remind"],
        "Notifications",
        "delivered in the request / queued and retried",
        "request latency against delivery delay and retries",
    ),
    (
        &["history", "audit"],
        "Audit history",
        "an append-only event record / change fields on each record",
        "complete history against one more write per change",
    ),
];

/// The decisions the requirements raise, plus the overall structure (the existing plan's
/// Project Type when it states one).
pub(crate) fn alternatives(feature: &Feature) -> Vec<Alternative> {
    let structure = feature
        .plan
        .as_ref()
        .and_then(|plan| plan.context("project type"))
        .filter(|value| !value.starts_with('[') && !value.contains("NEEDS CLARIFICATION"));
    let mut found = vec![Alternative {
        topic: "Overall structure",
        options: "as the project's existing code and constitution allow",
        choice: structure.map_or_else(|| UNDECIDED.to_owned(), str::to_owned),
        trade_off: "what the constitution permits (e.g. client-only, single project) decides it",
        raised_by: if structure.is_some() {
            "plan.md (Technical Context)".to_owned()
        } else {
            "every plan".to_owned()
        },
    }];
    for (words, topic, options, trade_off) in DECISIONS {
        let raised_by: Vec<String> = feature
            .spec
            .requirements
            .iter()
            .filter(|requirement| {
                let lower = requirement.text.to_lowercase();
                words.iter().any(|word| {
                    text::contains_word(&lower, word)
                        || text::contains_word(&lower, &format!("{word}s"))
                })
            })
            .map(|requirement| requirement.id.clone())
            .collect();
        if !raised_by.is_empty() {
            found.push(Alternative {
                topic,
                options,
                choice: UNDECIDED.to_owned(),
                trade_off,
                raised_by: raised_by.join(", "),
            });
        }
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
            model.fields_or_question(),
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
            let service = components.get(index).map_or_else(
                || "its component".to_owned(),
                |component| component.name.clone(),
            );
            let touched: Vec<String> =
                entities_in(spec, &format!("{} {}", story.title, story.narrative))
                    .iter()
                    .map(|entity| entity.name.clone())
                    .collect();
            format!(
                "{}: {service}{}",
                story.label(),
                if touched.is_empty() {
                    " (the story names no key entity)".to_owned()
                } else {
                    format!(" reads and writes {}", touched.join(", "))
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
                alternative.choice.clone(),
                alternative.trade_off.to_owned(),
                alternative.raised_by.clone(),
            ]
        })
        .collect();
    markdown::table(
        &mut out,
        &["Decision", "Options", "Chosen", "To weigh", "Raised by"],
        &rows,
    );
    out.push('\n');
    out.push_str(&report::open_questions(feature, "Open Questions"));
    out.push_str(&report::reading_notes(feature));
    let mut confidence = Confidence::for_feature(feature);
    if spec.entities.is_empty() {
        confidence.subtract(0.10, "no key entities".to_owned());
    }
    out.push_str(&confidence.render());
    out
}
