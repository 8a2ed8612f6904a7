//! Contradictions between a constitution principle and the plan's traced facts (its Technical
//! Context lines that name a source). Each rule pairs what a principle states with the facts
//! that say the opposite, and a contradiction cites both: the principle's sentence with its
//! line, the fact with where it was read.
//!
//! The rules (the principle's words → the facts that break them):
//! - a prohibition, `MUST NOT use|depend on|introduce|add|rely on X` or `never use X` → a fact
//!   naming X (its words, whole and case-insensitive);
//! - client-only (`client-only`, `no server`, `no backend`, …) → a server or backend platform,
//!   or a server database as storage;
//! - offline-only or no third-party/external/cloud services → a hosted service as storage or
//!   dependency (AWS, Firebase, DynamoDB, …);
//! - a required language or storage engine, named in a `MUST` sentence (`MUST be written in
//!   Rust`, `MUST use SQLite`) → a fact naming another one.
//!
//! Names are matched as proper names (case-sensitive whole words), so "go" in a sentence is
//! not the Go language.

use crate::analysts::technical_context::{ContextLine, STORAGE_NAMES};
use crate::speckit::{MANIFESTS, Principle};
use crate::text;

/// Phrases of a principle that forbid server-side code.
const CLIENT_ONLY: &[&str] = &[
    "client-only",
    "client only",
    "client-side only",
    "no server",
    "without a server",
    "no backend",
    "no back-end",
];
/// Words of a platform or project type that mean a server.
const SERVER_WORDS: &[&str] = &["server", "backend", "back-end", "linux"];
/// Storage engines that run as servers.
const SERVER_DATABASES: &[&str] = &[
    "PostgreSQL",
    "Postgres",
    "MySQL",
    "MariaDB",
    "MongoDB",
    "Redis",
    "DynamoDB",
    "Cassandra",
    "Elasticsearch",
];
/// Phrases of a principle that forbid hosted services.
const NO_SERVICES: &[&str] = &[
    "offline-only",
    "offline only",
    "no network",
    "no internet",
    "no third-party service",
    "no third party service",
    "no external service",
    "no cloud",
    "no hosted service",
];
/// Names of hosted services.
const HOSTED: &[&str] = &[
    "AWS",
    "S3",
    "DynamoDB",
    "Firebase",
    "Firestore",
    "Supabase",
    "Azure",
    "GCP",
    "Google Cloud",
    "Cloudflare",
    "Stripe",
    "Twilio",
    "SendGrid",
    "Auth0",
    "OpenAI",
];
/// Languages besides the manifests' (whose languages are in [`MANIFESTS`]).
const MORE_LANGUAGES: &[&str] = &["TypeScript", "C#", "C++", "Scala", "Haskell", "Zig"];
/// Verbs after `MUST NOT` whose object is a thing the project must not have.
const PROHIBITING_VERBS: &[&str] = &[
    "use",
    "depend on",
    "introduce",
    "add",
    "rely on",
    "include",
    "require",
];

/// What contradicts the principle in the facts, as one sentence citing both; `None` when
/// nothing does.
pub(crate) fn contradiction(principle: &Principle, facts: &[&ContextLine]) -> Option<String> {
    let sentences = sentences(&principle.text);
    let cite = |sentence: &str, fact: &ContextLine| {
        format!(
            "the principle says \"{}\" (constitution.md:{}) but the plan states {}: {} ({})",
            text::truncate(sentence.trim(), 160),
            principle.line,
            fact.key,
            fact.value,
            fact.source.as_deref().unwrap_or("plan.md")
        )
    };
    for sentence in &sentences {
        let lower = sentence.to_lowercase();
        if let Some(fact) = prohibited(&lower, facts) {
            return Some(cite(sentence, fact));
        }
        if CLIENT_ONLY.iter().any(|phrase| lower.contains(phrase))
            && let Some(fact) = facts.iter().find(|fact| is_server(fact))
        {
            return Some(cite(sentence, fact));
        }
        if NO_SERVICES.iter().any(|phrase| lower.contains(phrase))
            && let Some(fact) = facts
                .iter()
                .find(|fact| names_any(&affirmed(&fact.value), HOSTED).is_some())
        {
            return Some(cite(sentence, fact));
        }
        if sentence.contains("MUST") && !sentence.contains("MUST NOT") {
            for (key, names) in [
                ("Language/Version", languages()),
                ("Storage", STORAGE_NAMES.to_vec()),
            ] {
                if let Some(fact) = other_named(sentence, key, &names, facts) {
                    return Some(cite(sentence, fact));
                }
            }
        }
    }
    None
}

/// A principle's sentences (split at `.`, `;`, `。` and line ends).
fn sentences(text: &str) -> Vec<&str> {
    text.split(['.', ';', '。', '\n'])
        .map(str::trim)
        .filter(|sentence| !sentence.is_empty())
        .collect()
}

/// The fact naming what a `MUST NOT <verb> X` / `never use X` sentence forbids.
fn prohibited<'a>(lower: &str, facts: &[&'a ContextLine]) -> Option<&'a ContextLine> {
    let objects = ["must not ", "never ", "shall not "]
        .iter()
        .flat_map(|opening| {
            lower
                .match_indices(opening)
                .map(|(at, _)| at + opening.len())
        })
        .filter_map(|at| {
            let rest = &lower[at..];
            let rest = rest.strip_prefix("be ").unwrap_or(rest);
            PROHIBITING_VERBS
                .iter()
                .find_map(|verb| rest.strip_prefix(verb)?.strip_prefix(' '))
        });
    for object in objects {
        let object = object.split([',', ':', '(']).next().unwrap_or(object);
        let words: Vec<String> = object
            .split(" or ")
            .flat_map(|part| part.split(" and "))
            .flat_map(|part| text::keywords(part).into_iter().next())
            .collect();
        let found = facts.iter().find(|fact| {
            let value = affirmed(&fact.value).to_lowercase();
            words
                .iter()
                .any(|word| text::keywords(&value).contains(word))
        });
        if found.is_some() {
            return found.copied();
        }
    }
    None
}

/// A fact's value without its negated parts: "single-page app, no server" states no server.
fn affirmed(value: &str) -> String {
    value
        .split([',', ';', '(', ')'])
        .filter(|part| {
            let lower = part.to_lowercase();
            !["no", "not", "without", "never", "none"]
                .iter()
                .any(|negation| text::contains_word(&lower, negation))
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn is_server(fact: &ContextLine) -> bool {
    let stated = affirmed(&fact.value);
    let lower = stated.to_lowercase();
    let platform = matches!(fact.key, "Target Platform" | "Project Type")
        && SERVER_WORDS
            .iter()
            .any(|word| text::contains_word(&lower, word));
    let database = fact.key == "Storage" && names_any(&stated, SERVER_DATABASES).is_some();
    platform || database
}

/// The first of `names` the text holds as a whole word, case-sensitively.
fn names_any<'a>(text: &str, names: &[&'a str]) -> Option<&'a str> {
    names.iter().copied().find(|name| {
        text.match_indices(name).any(|(at, _)| {
            let before = text[..at].chars().next_back();
            let after = text[at + name.len()..].chars().next();
            let boundary = |c: Option<char>| c.is_none_or(|c| !c.is_alphanumeric());
            boundary(before) && boundary(after)
        })
    })
}

fn languages() -> Vec<&'static str> {
    let mut names: Vec<&str> = MANIFESTS.iter().map(|(_, language)| *language).collect();
    names.extend(MORE_LANGUAGES);
    names.dedup();
    names
}

/// The `key` fact when the sentence requires one of `names` and the fact names only others.
fn other_named<'a>(
    sentence: &str,
    key: &str,
    names: &[&str],
    facts: &[&'a ContextLine],
) -> Option<&'a ContextLine> {
    let required: Vec<&str> = names
        .iter()
        .copied()
        .filter(|name| names_any(sentence, &[name]).is_some())
        .collect();
    if required.is_empty() {
        return None;
    }
    let fact = facts.iter().find(|fact| fact.key == key)?;
    let stated: Vec<&str> = names
        .iter()
        .copied()
        .filter(|name| names_any(&fact.value, &[name]).is_some())
        .collect();
    // `Postgres` and `PostgreSQL` name one engine.
    let same = |a: &str, b: &str| a.starts_with(b) || b.starts_with(a);
    let contradicts = !stated.is_empty()
        && !stated
            .iter()
            .any(|name| required.iter().any(|wanted| same(name, wanted)));
    contradicts.then_some(*fact)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fact(key: &'static str, value: &str, source: &str) -> ContextLine {
        ContextLine {
            key,
            value: value.to_owned(),
            source: Some(source.to_owned()),
        }
    }

    fn principle(text: &str) -> Principle {
        Principle {
            name: "Rule".to_owned(),
            text: text.to_owned(),
            musts: Vec::new(),
            line: 7,
        }
    }

    fn broken(text: &str, facts: &[ContextLine]) -> Option<String> {
        let facts: Vec<&ContextLine> = facts.iter().collect();
        contradiction(&principle(text), &facts)
    }

    #[test]
    fn each_rule_cites_the_principle_and_the_fact() {
        let go = fact("Language/Version", "Go 1.21", "go.mod:3");
        let mysql = fact("Storage", "MySQL 8", "existing plan.md (Technical Context)");
        let firebase = fact(
            "Primary Dependencies",
            "React 18, Firebase",
            "package.json:4",
        );
        let server = fact(
            "Target Platform",
            "Linux server",
            "existing plan.md (Technical Context)",
        );
        let cases: [(&str, &ContextLine, &str); 6] = [
            (
                "Services MUST NOT use MySQL or MongoDB.",
                &mysql,
                "MySQL 8 (existing plan.md",
            ),
            (
                "The app is client-only: no server-side logic.",
                &server,
                "Linux server",
            ),
            (
                "The app is offline-only.",
                &firebase,
                "Firebase (package.json:4)",
            ),
            ("We use no third-party services.", &firebase, "Firebase"),
            (
                "All code MUST be written in Rust.",
                &go,
                "Go 1.21 (go.mod:3)",
            ),
            ("Data MUST be kept in SQLite.", &mysql, "MySQL 8"),
        ];
        for (text, fact, cited) in cases {
            let found = broken(text, std::slice::from_ref(fact))
                .unwrap_or_else(|| panic!("no contradiction for {text:?}"));
            assert!(found.contains("constitution.md:7"), "{found}");
            assert!(found.contains(cited), "{found}");
        }
    }

    #[test]
    fn agreeing_facts_and_ordinary_words_are_no_contradiction() {
        let facts = [
            fact("Language/Version", "Go 1.22", "go.mod:3"),
            fact("Storage", "SQLite", "plan.md (Technical Context)"),
        ];
        for text in [
            "Code MUST be written in Go.",
            "Data MUST be kept in SQLite.",
            "Data MUST be kept in SQLite or Postgres.",
            "Releases MUST go through review.",
            "Services MUST NOT use MySQL.",
            "The app is client-only.",
            "Tests MUST be written first.",
        ] {
            assert_eq!(broken(text, &facts), None, "{text}");
        }
        assert_eq!(broken("Services MUST NOT use MySQL.", &[]), None);
        // A fact that denies the thing does not state it.
        let client = [fact(
            "Project Type",
            "single-page web app, no server",
            "existing plan.md (Technical Context)",
        )];
        assert_eq!(
            broken("The app is client-only: no server-side logic.", &client),
            None
        );
        assert_eq!(broken("Apps MUST NOT use a server.", &client), None);
    }
}
