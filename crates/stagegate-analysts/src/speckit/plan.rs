//! `plan.md`: spec-kit's implementation plan — Summary, Technical Context (`**Key**: value`
//! lines), Constitution Check, Project Structure (a directory tree in a code block) and
//! Complexity Tracking (a table).

use crate::markdown::{self, BlockKind};
use crate::speckit::spec::looks_binary;

/// The sections spec-kit's plan template requires, in order.
pub const PLAN_SECTIONS: [&str; 5] = [
    "Summary",
    "Technical Context",
    "Constitution Check",
    "Project Structure",
    "Complexity Tracking",
];

/// A parsed plan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// `# Implementation Plan: <title>`'s title.
    pub title: Option<String>,
    pub summary: String,
    /// `**Language/Version**: Rust 1.95` → `("Language/Version", "Rust 1.95")`.
    pub technical_context: Vec<(String, String)>,
    /// The Constitution Check section's lines (items, paragraphs and table rows).
    pub constitution_check: Vec<String>,
    /// Paths of the Project Structure tree (`backend/src/models/`), comments removed.
    pub project_structure: Vec<String>,
    /// Complexity Tracking rows (header and separator excluded).
    pub complexity_tracking: Vec<Vec<String>>,
    /// Every level-2 heading, in order.
    pub headings: Vec<String>,
    /// CamelCase names and bold terms, for comparing the plan's vocabulary with the spec's.
    pub terms: Vec<(String, usize)>,
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Summary,
    TechnicalContext,
    ConstitutionCheck,
    ProjectStructure,
    ComplexityTracking,
    Other,
}

impl Plan {
    /// Reads a plan; never fails (see [`Plan::notes`]).
    pub fn parse(source: &str) -> Plan {
        let mut plan = Plan::default();
        if source.trim().is_empty() {
            plan.notes.push("plan.md is empty".to_owned());
            return plan;
        }
        if looks_binary(source) {
            plan.notes
                .push("plan.md does not look like text; nothing was read".to_owned());
            return plan;
        }
        let document = markdown::parse(source);
        let mut section = Section::Other;
        let mut summary = Vec::new();
        for block in &document.blocks {
            if block.kind != BlockKind::Code {
                collect_terms(&block.text, block.line, &mut plan.terms);
            }
            match block.kind {
                BlockKind::Heading { level } => {
                    let plain = markdown::plain(&block.text);
                    if level == 1 && plan.title.is_none() {
                        let title = plain
                            .split_once(':')
                            .map_or(plain.as_str(), |(_, rest)| rest)
                            .trim();
                        plan.title = Some(title.to_owned());
                        continue;
                    }
                    if level == 2 {
                        plan.headings.push(plain.clone());
                    }
                    let lower = plain.to_lowercase();
                    let next = if lower.contains("summary") {
                        Section::Summary
                    } else if lower.contains("technical context") {
                        Section::TechnicalContext
                    } else if lower.contains("constitution") {
                        Section::ConstitutionCheck
                    } else if lower.contains("project structure") {
                        Section::ProjectStructure
                    } else if lower.contains("complexity") {
                        Section::ComplexityTracking
                    } else if level <= 2 {
                        Section::Other
                    } else {
                        section
                    };
                    section = next;
                }
                BlockKind::Code if section == Section::ProjectStructure => {
                    plan.project_structure.extend(tree_paths(&block.text));
                }
                BlockKind::Code => {}
                BlockKind::Rule => {}
                _ => match section {
                    Section::Summary => summary.push(markdown::plain(&block.text)),
                    Section::TechnicalContext => {
                        if let Some(pair) = markdown::bold_label(&block.text) {
                            plan.technical_context.push(pair);
                        }
                    }
                    Section::ConstitutionCheck => {
                        plan.constitution_check.push(markdown::plain(&block.text));
                    }
                    Section::ComplexityTracking
                        if block.kind == BlockKind::TableRow
                            && !markdown::is_separator_row(&block.text) =>
                    {
                        plan.complexity_tracking
                            .push(markdown::table_cells(&block.text));
                    }
                    _ => {}
                },
            }
        }
        // The first complexity row is the header.
        if !plan.complexity_tracking.is_empty() {
            plan.complexity_tracking.remove(0);
        }
        plan.summary = summary.join(" ");
        for required in PLAN_SECTIONS {
            let present = plan
                .headings
                .iter()
                .any(|heading| heading.to_lowercase().contains(&required.to_lowercase()));
            if !present {
                plan.notes.push(format!("no `## {required}` section"));
            }
        }
        plan
    }

    /// A Technical Context value by key (case-insensitive, `Language/Version` matches
    /// `language`).
    pub fn context(&self, key: &str) -> Option<&str> {
        let key = key.to_lowercase();
        self.technical_context
            .iter()
            .find(|(name, _)| name.to_lowercase().contains(&key))
            .map(|(_, value)| value.as_str())
    }
}

/// Paths of a directory tree drawn with `├──`, `└──`, `│` (or plain indentation).
pub(crate) fn tree_paths(code: &str) -> Vec<String> {
    let mut stack: Vec<(usize, String)> = Vec::new();
    let mut paths = Vec::new();
    for line in code.lines() {
        let prefix: usize = line
            .chars()
            .take_while(|c| {
                matches!(
                    c,
                    ' ' | '\t' | '│' | '├' | '└' | '─' | '|' | '+' | '`' | '-'
                )
            })
            .map(|c| if c == '\t' { 4 } else { 1 })
            .sum();
        let name_start = line
            .char_indices()
            .find(|(_, c)| {
                !matches!(
                    c,
                    ' ' | '\t' | '│' | '├' | '└' | '─' | '|' | '+' | '`' | '-'
                )
            })
            .map(|(index, _)| index);
        let Some(name_start) = name_start else {
            continue;
        };
        let rest = &line[name_start..];
        if rest.starts_with('#') {
            continue;
        }
        let name = rest.split('#').next().unwrap_or("").trim();
        if name.is_empty() || name.contains(' ') && !name.ends_with('/') {
            continue;
        }
        while stack.last().is_some_and(|(depth, _)| *depth >= prefix) {
            stack.pop();
        }
        let mut path: String = stack.iter().map(|(_, part)| part.as_str()).collect();
        path.push_str(name);
        if name.ends_with('/') {
            stack.push((prefix, name.to_owned()));
        } else if !name.contains('.') && !paths.is_empty() {
            // A bare word below a directory is a directory written without its slash.
            stack.push((prefix, format!("{name}/")));
        }
        paths.push(path);
    }
    paths
}

/// CamelCase identifiers (`ShareLink`) and bold terms (`**Album**`) of a block.
fn collect_terms(text: &str, line: usize, terms: &mut Vec<(String, usize)>) {
    if terms.len() > 5_000 {
        return;
    }
    for word in text.split(|c: char| !c.is_alphanumeric()) {
        let uppercase = word.chars().filter(char::is_ascii_uppercase).count();
        let starts_upper = word.chars().next().is_some_and(|c| c.is_ascii_uppercase());
        let has_lower = word.chars().any(|c| c.is_ascii_lowercase());
        if starts_upper && uppercase >= 2 && has_lower && word.len() <= 40 {
            terms.push((word.to_owned(), line));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAN: &str = "# Implementation Plan: Team Photo Albums\n\n## Summary\n\nAlbums.\n\n\
        ## Technical Context\n\n**Language/Version**: TypeScript 5\n**Storage**: PostgreSQL\n\n\
        ## Constitution Check\n\n- I. Library-First: PASS\n\n## Project Structure\n\n```text\n\
        backend/\n├── src/\n│   ├── models/   # entities\n│   └── services/\n└── tests/\n\
        frontend/\n└── src/\n```\n\n## Complexity Tracking\n\n| Violation | Why |\n|---|---|\n\
        | none | — |\n\nThe ShareLink model.\n";

    #[test]
    fn reads_the_template_sections() {
        let plan = Plan::parse(PLAN);
        assert_eq!(plan.title.as_deref(), Some("Team Photo Albums"));
        assert_eq!(plan.summary, "Albums.");
        assert_eq!(plan.context("language"), Some("TypeScript 5"));
        assert_eq!(plan.context("storage"), Some("PostgreSQL"));
        assert_eq!(plan.constitution_check, vec!["I. Library-First: PASS"]);
        assert_eq!(
            plan.project_structure,
            vec![
                "backend/",
                "backend/src/",
                "backend/src/models/",
                "backend/src/services/",
                "backend/tests/",
                "frontend/",
                "frontend/src/"
            ]
        );
        assert_eq!(plan.complexity_tracking, vec![vec!["none", "—"]]);
        assert!(plan.terms.iter().any(|(term, _)| term == "ShareLink"));
        assert!(plan.notes.is_empty(), "{:?}", plan.notes);
    }

    #[test]
    fn missing_sections_are_noted() {
        let plan = Plan::parse("just text\r\n");
        assert_eq!(plan.notes.len(), 5);
        assert!(Plan::parse("").notes[0].contains("empty"));
    }
}
