//! The Technical Context of a plan, stated only where it can be traced: the existing plan's
//! own Technical Context, an explicit `**Language/Version**:`-style statement in the spec,
//! or the repository's manifests. Each value says where it was read; anything else is
//! `NEEDS CLARIFICATION`. Ordinary words are never evidence: "reminders go out" names no
//! language, "fast as a swift" no platform.

use crate::markdown;
use crate::speckit::manifest::Fact;
use crate::speckit::{Feature, Manifest};
use crate::text;

pub(crate) const UNKNOWN: &str = "NEEDS CLARIFICATION (not stated in the inputs)";

/// One Technical Context line with where its value comes from.
pub(crate) struct ContextLine {
    pub(crate) key: &'static str,
    pub(crate) value: String,
    /// `go.mod:3`, `spec.md:12`, `existing plan.md (Technical Context)`; `None` when unknown.
    pub(crate) source: Option<String>,
}

impl ContextLine {
    pub(crate) fn render(&self) -> String {
        match &self.source {
            Some(source) => format!("**{}**: {} _(source: {source})_", self.key, self.value),
            None => format!("**{}**: {}", self.key, self.value),
        }
    }

    pub(crate) fn known(&self) -> bool {
        self.source.is_some()
    }
}

/// Storage engines: proper names, matched case-sensitively so that "a redis-like cache" or
/// "store it" state nothing.
pub(crate) const STORAGE_NAMES: &[&str] = &[
    "PostgreSQL",
    "Postgres",
    "MySQL",
    "MariaDB",
    "SQLite",
    "MongoDB",
    "Redis",
    "DynamoDB",
    "IndexedDB",
    "localStorage",
];

/// A value the existing plan states (not a template's `[e.g., …]` nor an open question).
fn from_plan(feature: &Feature, key: &str) -> Option<(String, String)> {
    let plan = feature.plan.as_ref()?;
    // A plan this pipeline wrote gives each value's source after it; the value is before.
    let value = plan.context(key)?.split(" _(source:").next()?.trim();
    let placeholder = value.is_empty()
        || value.starts_with('[')
        || value.contains("NEEDS CLARIFICATION")
        || value.contains("e.g.");
    if placeholder {
        return None;
    }
    let name = if feature.existing.iter().any(|name| name == "plan.md") {
        "existing plan.md"
    } else {
        "plan.md"
    };
    Some((value.to_owned(), format!("{name} (Technical Context)")))
}

/// An explicit statement in the spec: a `**Language**: …`-style label whose key holds one of
/// `keys`, with its line.
fn stated_in_spec(feature: &Feature, keys: &[&str]) -> Option<(String, String)> {
    let spec = feature.text("spec.md")?;
    spec.lines().enumerate().find_map(|(index, line)| {
        let trimmed = line.trim().trim_start_matches(['-', '*', ' ']);
        let (label, value) =
            markdown::bold_label(trimmed).or_else(|| markdown::bold_label(line.trim()))?;
        let label = label.to_lowercase();
        let value = value.trim();
        (keys.iter().any(|key| label.contains(key))
            && !value.is_empty()
            && !value.starts_with('[')
            && !value.contains("NEEDS CLARIFICATION"))
        .then(|| (value.to_owned(), format!("spec.md:{}", index + 1)))
    })
}

/// The facts' values and their sources, each joined with commas; `None` for no facts.
fn joined(facts: &[&Fact]) -> Option<(String, String)> {
    let join = |part: fn(&Fact) -> &str| {
        facts
            .iter()
            .map(|fact| part(fact))
            .collect::<Vec<_>>()
            .join(", ")
    };
    (!facts.is_empty()).then(|| (join(|fact| &fact.value), join(|fact| &fact.source)))
}

/// The languages the manifests imply, with their sources.
fn from_manifests(manifests: &[Manifest]) -> Option<(String, String)> {
    let facts: Vec<_> = manifests
        .iter()
        .filter_map(|manifest| manifest.language.as_ref())
        .collect();
    joined(&facts)
}

fn dependencies(manifests: &[Manifest]) -> Option<(String, String)> {
    let facts: Vec<_> = manifests
        .iter()
        .flat_map(|manifest| manifest.dependencies.iter().take(8))
        .collect();
    joined(&facts)
}

fn test_frameworks(manifests: &[Manifest]) -> Option<(String, String)> {
    let facts: Vec<_> = manifests
        .iter()
        .flat_map(Manifest::test_frameworks)
        .collect();
    joined(&facts)
}

/// Storage named in the spec's own words, by its proper name, with the line.
fn storage_in_spec(feature: &Feature) -> Option<(String, String)> {
    let spec = feature.text("spec.md")?;
    let mut names = Vec::new();
    let mut lines = Vec::new();
    for (index, line) in spec.lines().enumerate() {
        for name in STORAGE_NAMES {
            let named = line.match_indices(name).any(|(at, _)| {
                let before = line[..at].chars().next_back();
                let after = line[at + name.len()..].chars().next();
                !before.is_some_and(char::is_alphanumeric)
                    && !after.is_some_and(char::is_alphanumeric)
            });
            if named && !names.contains(name) {
                names.push(*name);
                lines.push(format!("spec.md:{}", index + 1));
            }
        }
    }
    (!names.is_empty()).then(|| (names.join(", "), lines.join(", ")))
}

fn line(key: &'static str, found: Option<(String, String)>) -> ContextLine {
    match found {
        Some((value, source)) => ContextLine {
            key,
            value,
            source: Some(source),
        },
        None => ContextLine {
            key,
            value: UNKNOWN.to_owned(),
            source: None,
        },
    }
}

/// The Technical Context lines, in spec-kit's plan template order.
pub(crate) fn technical_context(feature: &Feature) -> Vec<ContextLine> {
    let spec = &feature.spec;
    let manifests = &feature.manifests;
    let mut lines = vec![
        line(
            "Language/Version",
            from_plan(feature, "language")
                .or_else(|| stated_in_spec(feature, &["language", "tech stack", "technology"]))
                .or_else(|| from_manifests(manifests)),
        ),
        line(
            "Primary Dependencies",
            from_plan(feature, "primary dependencies")
                .or_else(|| stated_in_spec(feature, &["dependencies", "framework"]))
                .or_else(|| dependencies(manifests)),
        ),
        line(
            "Storage",
            from_plan(feature, "storage")
                .or_else(|| stated_in_spec(feature, &["storage", "database"]))
                .or_else(|| storage_in_spec(feature)),
        ),
        line(
            "Testing",
            from_plan(feature, "testing")
                .or_else(|| stated_in_spec(feature, &["testing"]))
                .or_else(|| test_frameworks(manifests)),
        ),
        line(
            "Target Platform",
            from_plan(feature, "target platform")
                .or_else(|| stated_in_spec(feature, &["platform"])),
        ),
        line(
            "Project Type",
            from_plan(feature, "project type")
                .or_else(|| stated_in_spec(feature, &["project type"])),
        ),
    ];
    let goals: Vec<String> = spec
        .success_criteria
        .iter()
        .filter(|criterion| text::has_number(&criterion.text))
        .map(|criterion| format!("{} {}", criterion.id, text::truncate(&criterion.text, 80)))
        .collect();
    lines.push(line(
        "Performance Goals",
        from_plan(feature, "performance").or_else(|| {
            (!goals.is_empty()).then(|| (goals.join("; "), "spec.md (Success Criteria)".to_owned()))
        }),
    ));
    let constraints: Vec<String> = spec
        .requirements
        .iter()
        .filter(|requirement| text::has_number(&requirement.text))
        .map(|requirement| requirement.id.clone())
        .collect();
    lines.push(line(
        "Constraints",
        from_plan(feature, "constraints").or_else(|| {
            (!constraints.is_empty()).then(|| {
                (
                    format!("the limits of {}", constraints.join(", ")),
                    "spec.md (Requirements)".to_owned(),
                )
            })
        }),
    ));
    lines.push(ContextLine {
        key: "Scale/Scope",
        value: format!(
            "{} user stories, {} functional requirements, {} success criteria, {} key entities",
            spec.stories.len(),
            spec.requirements.len(),
            spec.success_criteria.len(),
            spec.entities.len()
        ),
        source: Some("counted in spec.md".to_owned()),
    });
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use stagegate_engine::prompt::NamedText;

    fn named(name: &str, content: &str) -> NamedText {
        NamedText {
            name: name.to_owned(),
            content: content.to_owned(),
        }
    }

    fn value<'a>(lines: &'a [ContextLine], key: &str) -> &'a ContextLine {
        lines
            .iter()
            .find(|line| line.key == key)
            .unwrap_or_else(|| panic!("no {key}"))
    }

    const ORDINARY_WORDS: &str = "# Feature Specification: Reminders\n\n## User Scenarios & Testing\n\n### User Story 1 - Get reminded (Priority: P1)\n\nReminders go out at eight; the reply must be swift, and old entries must not rust in the queue. Messages go through the Java island office.\n\n## Requirements\n\n- **FR-001**: System MUST send reminders that go out at 08:00.\n";

    #[test]
    fn ordinary_words_name_no_language() {
        let feature = Feature::from_files(&[named("spec.md", ORDINARY_WORDS)], &[]);
        let lines = technical_context(&feature);
        let language = value(&lines, "Language/Version");
        assert!(!language.known(), "{}", language.value);
        assert_eq!(language.value, UNKNOWN);
        assert!(!value(&lines, "Target Platform").known());
        assert!(!value(&lines, "Storage").known());
    }

    #[test]
    fn the_manifest_names_the_language_with_its_line() {
        let feature = Feature::from_files(
            &[
                named("spec.md", ORDINARY_WORDS),
                named("go.mod", "module x\n\ngo 1.21\n"),
            ],
            &[],
        );
        let lines = technical_context(&feature);
        let language = value(&lines, "Language/Version");
        assert_eq!(language.value, "Go 1.21");
        assert_eq!(language.source.as_deref(), Some("go.mod:3"));
        assert!(language.render().contains("go.mod:3"));
    }

    #[test]
    fn an_existing_plan_wins_and_its_template_placeholders_do_not() {
        let filled = "# Implementation Plan: X\n\n## Technical Context\n\n**Language/Version**: Go 1.21\n**Storage**: MySQL 8\n";
        let feature = Feature::from_files(
            &[
                named("spec.md", ORDINARY_WORDS),
                named("existing/plan.md", filled),
            ],
            &[],
        );
        let lines = technical_context(&feature);
        assert_eq!(value(&lines, "Storage").value, "MySQL 8");
        assert_eq!(
            value(&lines, "Language/Version").source.as_deref(),
            Some("existing plan.md (Technical Context)")
        );
        let template = "## Technical Context\n\n**Language/Version**: [e.g., Python 3.11 or NEEDS CLARIFICATION]\n";
        let feature = Feature::from_files(
            &[
                named("spec.md", ORDINARY_WORDS),
                named("existing/plan.md", template),
            ],
            &[],
        );
        assert!(!value(&technical_context(&feature), "Language/Version").known());
    }

    #[test]
    fn an_explicit_statement_in_the_spec_counts_with_its_line() {
        let spec = format!("{ORDINARY_WORDS}\n## Technical Context\n\n**Language**: Kotlin 2.0\n");
        let feature = Feature::from_files(&[named("spec.md", &spec)], &[]);
        let lines = technical_context(&feature);
        let language = value(&lines, "Language/Version");
        assert_eq!(language.value, "Kotlin 2.0");
        assert!(
            language
                .source
                .as_deref()
                .is_some_and(|source| source.starts_with("spec.md:"))
        );
    }
}
