//! `spec.md`: spec-kit's feature specification — user stories with priorities and acceptance
//! scenarios, edge cases, `FR-###` requirements, key entities, `SC-###` success criteria,
//! assumptions, clarifications and the open `[NEEDS CLARIFICATION: …]` markers.
//!
//! The reader follows the template's headings but never depends on them: requirements and
//! success criteria are recognized by their ids anywhere, stories by `User Story` or
//! `(Priority: Pn)` headings. Whatever does not fit is reported in [`Spec::notes`].

use crate::markdown::{self, BlockKind};
use crate::text;

/// A parsed feature specification.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Spec {
    /// `# Feature Specification: <title>`'s title.
    pub title: Option<String>,
    /// `**Feature Branch**: `001-name``.
    pub branch: Option<String>,
    /// `**Created**: …`.
    pub created: Option<String>,
    /// `**Input**: User description: "…"`.
    pub description: Option<String>,
    pub stories: Vec<UserStory>,
    pub edge_cases: Vec<Located>,
    /// `FR-###` in the order written (duplicates kept; see [`Spec::duplicate_ids`]).
    pub requirements: Vec<Requirement>,
    /// `SC-###` in the order written.
    pub success_criteria: Vec<Requirement>,
    pub entities: Vec<Entity>,
    pub assumptions: Vec<Located>,
    /// The answered questions of a `## Clarifications` section.
    pub clarifications: Vec<Located>,
    /// Every `[NEEDS CLARIFICATION: …]` marker.
    pub open_questions: Vec<OpenQuestion>,
    /// `TODO`, `TBD`, `???` … with where they sit.
    pub placeholders: Vec<Placeholder>,
    /// Items of the requirements section that carry no `FR-###` id.
    pub unnumbered_requirements: Vec<Located>,
    /// Ids defined more than once, with every line they were defined on.
    pub duplicate_ids: Vec<(String, Vec<usize>)>,
    /// What could not be read, in reading order.
    pub notes: Vec<String>,
}

/// A piece of text and the line it starts on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Located {
    pub text: String,
    pub line: usize,
}

/// A user story: `### User Story 1 - Title (Priority: P1)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserStory {
    /// The story's number (`1` for `User Story 1`), else its position from 1.
    pub number: usize,
    pub title: String,
    /// `1` for `P1`; `None` when no priority was given.
    pub priority: Option<u32>,
    /// The story's own paragraph(s).
    pub narrative: String,
    pub why_priority: Option<String>,
    pub independent_test: Option<String>,
    pub scenarios: Vec<Scenario>,
    pub line: usize,
}

impl UserStory {
    /// `US1`, as tasks.md labels stories.
    pub fn label(&self) -> String {
        format!("US{}", self.number)
    }
}

/// An acceptance scenario: **Given** …, **When** …, **Then** ….
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scenario {
    pub given: String,
    pub when: String,
    pub then: String,
    /// The whole scenario as written (without emphasis).
    pub text: String,
    pub line: usize,
}

impl Scenario {
    /// Whether it has all three parts.
    pub fn is_complete(&self) -> bool {
        !self.given.is_empty() && !self.when.is_empty() && !self.then.is_empty()
    }
}

/// A requirement or success criterion with its id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Requirement {
    pub id: String,
    pub text: String,
    pub line: usize,
}

/// The prefix of the ids given, in order, to the requirements of a spec that numbers none
/// (`DR-001`): a free-form spec's "must" sentences and requirement lists.
pub const DERIVED_PREFIX: &str = "DR-";

impl Requirement {
    /// A functional requirement (`FR-###`, or one derived from a free-form spec), not a
    /// success criterion.
    pub fn is_functional(&self) -> bool {
        !self.id.starts_with("SC-")
    }

    /// Whether its id was given by stagegate rather than written in the spec.
    pub fn is_derived(&self) -> bool {
        self.id.starts_with(DERIVED_PREFIX)
    }

    /// Where it is written: `spec.md:12`, or `derived from spec.md:12`.
    pub fn source(&self) -> String {
        if self.is_derived() {
            format!("derived from spec.md:{}", self.line)
        } else {
            format!("spec.md:{}", self.line)
        }
    }
}

/// A key entity: `**Name**: description`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entity {
    pub name: String,
    pub description: String,
    pub line: usize,
}

/// A `[NEEDS CLARIFICATION: question]` marker.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenQuestion {
    pub question: String,
    /// The requirement it sits in (`FR-008`), else the story or section.
    pub location: String,
    /// The requirement id when it sits in one.
    pub requirement: Option<String>,
    pub line: usize,
}

/// A placeholder left in the text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Placeholder {
    pub token: String,
    pub location: String,
    pub line: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Preamble,
    /// The older template's `## Review & Acceptance Checklist`: its items are about the spec,
    /// not requirements of the feature, even under `### Requirement Completeness`.
    Checklist,
    Stories,
    EdgeCases,
    Requirements,
    Entities,
    SuccessCriteria,
    Assumptions,
    Clarifications,
    Other,
}

/// Which section a heading opens, by its words (`## Requirements *(mandatory)*`).
fn section_of(heading: &str, level: u8, current: Section) -> Section {
    let key = heading.to_lowercase();
    let has = |words: &[&str]| words.iter().any(|word| key.contains(word));
    if has(&["checklist", "チェックリスト"]) || (current == Section::Checklist && level >= 3)
    {
        Section::Checklist
    } else if has(&["edge case", "エッジケース", "境界"]) {
        Section::EdgeCases
    } else if has(&["key entit", "エンティティ"]) || key == "entities" {
        Section::Entities
    } else if has(&[
        "success criteria",
        "measurable outcome",
        "成功基準",
        "成功指標",
    ]) {
        Section::SuccessCriteria
    } else if has(&["requirement", "要件", "must do", "must have"]) {
        Section::Requirements
    } else if has(&[
        "user scenario",
        "user stor",
        "ユーザーシナリオ",
        "ユーザーストーリー",
    ]) {
        Section::Stories
    } else if has(&["assumption", "前提"]) {
        Section::Assumptions
    } else if has(&["clarification", "明確化"]) {
        Section::Clarifications
    } else if level >= 3 {
        // A sub-heading of its own kind (`### Session 2025-01-01`) stays in its section.
        current
    } else {
        Section::Other
    }
}

/// The most notes kept; a garbage input must not produce a megabyte of them.
const NOTE_LIMIT: usize = 40;

impl Spec {
    /// Reads a spec. Never fails: an empty, garbled or foreign input gives an empty spec with
    /// notes saying what was missing.
    pub fn parse(source: &str) -> Spec {
        let mut spec = Spec::default();
        if source.trim().is_empty() {
            spec.notes.push("spec.md is empty".to_owned());
            return spec;
        }
        if looks_binary(source) {
            spec.notes.push(
                "spec.md does not look like text (control characters or NUL bytes); nothing was read"
                    .to_owned(),
            );
            return spec;
        }
        // Bytes that were not UTF-8 reach us as U+FFFD (the inputs are read lossily).
        let unreadable = source.matches('\u{FFFD}').count();
        if unreadable > 0 {
            spec.notes.push(format!(
                "{unreadable} character(s) are not valid UTF-8 (read as U+FFFD); the text around them may be garbled"
            ));
        }
        let document = markdown::parse(source);
        if document.unterminated_fence {
            spec.notes.push(
                "a code fence is never closed; the rest of the file was read as code".to_owned(),
            );
        }
        let mut reader = Reader {
            spec: &mut spec,
            section: Section::Preamble,
            section_name: "preamble".to_owned(),
            in_acceptance: false,
            headings: 0,
            seen_ids: Vec::new(),
            obligations: Vec::new(),
        };
        for block in &document.blocks {
            reader.block(block);
        }
        let headings = reader.headings;
        let seen = std::mem::take(&mut reader.seen_ids);
        let obligations = std::mem::take(&mut reader.obligations);
        spec.derive_requirements(obligations);
        spec.finish(headings, seen);
        spec
    }

    /// The requirement with this id (the first, if duplicated).
    pub fn requirement(&self, id: &str) -> Option<&Requirement> {
        self.requirements
            .iter()
            .chain(&self.success_criteria)
            .find(|requirement| requirement.id == id)
    }

    /// The feature's display name: the title, else the branch, else `None`.
    pub fn feature_name(&self) -> Option<String> {
        self.title.clone().or_else(|| self.branch.clone())
    }

    /// A spec that numbers no requirement gets numbered ones, in order, so that the plan and
    /// QA have something to trace: the items under its requirement-like headings, else its
    /// sentences that state an obligation (see [`states_obligation`]). Each keeps its line.
    fn derive_requirements(&mut self, obligations: Vec<Located>) {
        if !self.requirements.is_empty() {
            return;
        }
        let sources = if self.unnumbered_requirements.is_empty() {
            obligations
        } else {
            self.unnumbered_requirements.clone()
        };
        if sources.is_empty() {
            return;
        }
        self.requirements = sources
            .into_iter()
            .enumerate()
            .map(|(index, located)| Requirement {
                id: format!("{DERIVED_PREFIX}{:03}", index + 1),
                text: located.text,
                line: located.line,
            })
            .collect();
        let lines: Vec<String> = self
            .requirements
            .iter()
            .map(|requirement| requirement.line.to_string())
            .collect();
        push_note(
            &mut self.notes,
            format!(
                "no `FR-###` ids: {} requirements were numbered in order as {DERIVED_PREFIX}001… from lines {}",
                self.requirements.len(),
                text::truncate(&lines.join(", "), 120)
            ),
        );
    }

    fn finish(&mut self, headings: usize, seen: Vec<(String, usize)>) {
        let mut notes = Vec::new();
        if headings == 0 {
            notes.push(
                "no markdown headings: the file does not follow spec-kit's spec template"
                    .to_owned(),
            );
        }
        if self.title.is_none() && headings > 0 {
            notes.push("no `# Feature Specification: <name>` title".to_owned());
        }
        if self.stories.is_empty() {
            notes.push(
                "no user stories (`### User Story N - Title (Priority: Pn)`) were found".to_owned(),
            );
        }
        for story in &self.stories {
            if story.priority.is_none() {
                notes.push(format!(
                    "user story {} (line {}) has no `(Priority: Pn)`",
                    story.number, story.line
                ));
            }
        }
        if self.requirements.is_empty() {
            notes.push("no functional requirements (`FR-###`) were found".to_owned());
        }
        if self.success_criteria.is_empty() {
            notes.push("no success criteria (`SC-###`) were found".to_owned());
        }
        // Duplicate ids, in order of first definition.
        let mut lines_by_id: Vec<(String, Vec<usize>)> = Vec::new();
        let mut index: std::collections::HashMap<String, usize> = Default::default();
        for (id, line) in seen {
            match index.get(&id) {
                Some(&at) => lines_by_id[at].1.push(line),
                None => {
                    index.insert(id.clone(), lines_by_id.len());
                    lines_by_id.push((id, vec![line]));
                }
            }
        }
        for (id, lines) in lines_by_id {
            if lines.len() > 1 {
                let list: Vec<String> = lines.iter().map(usize::to_string).collect();
                notes.push(format!(
                    "{id} is defined more than once (lines {})",
                    list.join(", ")
                ));
                self.duplicate_ids.push((id, lines));
            }
        }
        for note in notes {
            push_note(&mut self.notes, note);
        }
    }
}

fn push_note(notes: &mut Vec<String>, note: String) {
    if notes.len() < NOTE_LIMIT {
        notes.push(note);
    } else if notes.len() == NOTE_LIMIT {
        notes.push("… further notes left out".to_owned());
    }
}

/// Whether the text is binary rather than prose: NUL bytes or many control characters.
pub(crate) fn looks_binary(source: &str) -> bool {
    let sample: Vec<char> = source.chars().take(4096).collect();
    let control = sample
        .iter()
        .filter(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
        .count();
    source.contains('\0') || control * 10 > sample.len().max(1)
}

struct Reader<'a> {
    spec: &'a mut Spec,
    section: Section,
    section_name: String,
    /// Inside a story's `**Acceptance Scenarios**` list.
    in_acceptance: bool,
    headings: usize,
    /// Every id definition with its line, for duplicate detection.
    seen_ids: Vec<(String, usize)>,
    /// Sentences outside the stories that state an obligation, for a spec without ids.
    obligations: Vec<Located>,
}

impl Reader<'_> {
    fn block(&mut self, block: &markdown::Block) {
        if block.kind == BlockKind::Code {
            return;
        }
        let mut requirement_id = None;
        match &block.kind {
            BlockKind::Heading { level } => self.heading(*level, &block.text, block.line),
            BlockKind::Item { checkbox: Some(_) } if self.section == Section::Checklist => {}
            BlockKind::Item { checkbox } => {
                requirement_id = self.item(&block.text, block.line, checkbox.is_some());
            }
            BlockKind::Paragraph => self.paragraph(&block.text, block.line),
            BlockKind::TableRow | BlockKind::Rule | BlockKind::Code => {}
        }
        self.markers(&block.text, block.line, requirement_id);
    }

    fn location(&self) -> String {
        match (self.section, self.spec.stories.last()) {
            (Section::Stories, Some(story)) => format!("User Story {}", story.number),
            _ => self.section_name.clone(),
        }
    }

    /// `[NEEDS CLARIFICATION: …]` and placeholder tokens in any block.
    fn markers(&mut self, text: &str, line: usize, requirement: Option<String>) {
        let upper = text.to_ascii_uppercase();
        let location = requirement.clone().unwrap_or_else(|| self.location());
        let mut start = 0;
        while let Some(offset) = upper[start..].find("NEEDS CLARIFICATION") {
            let at = start + offset + "NEEDS CLARIFICATION".len();
            let rest = &text[at..];
            let end = rest.find(']').unwrap_or_else(|| {
                rest.char_indices()
                    .nth(300)
                    .map_or(rest.len(), |(index, _)| index)
            });
            let question = rest[..end].trim_start_matches([':', ' ', '-']).trim();
            // A checklist's "No [NEEDS CLARIFICATION] markers remain" and the template's own
            // "[NEEDS CLARIFICATION: specific question]" talk about markers; they ask nothing.
            let about_markers = (question.is_empty()
                && (text.to_lowercase().contains("marker")
                    || text.trim_start().starts_with("[ ]")
                    || text.trim_start().to_lowercase().starts_with("[x]")))
                || question.eq_ignore_ascii_case("specific question");
            if about_markers {
                start = at + end;
                continue;
            }
            if self.spec.open_questions.len() < 10_000 {
                self.spec.open_questions.push(OpenQuestion {
                    question: if question.is_empty() {
                        "(no question given)".to_owned()
                    } else {
                        question.to_owned()
                    },
                    location: location.clone(),
                    requirement: requirement.clone(),
                    line,
                });
            }
            start = at + end;
        }
        for token in text::PLACEHOLDERS {
            let found = if token.chars().all(|c| c.is_ascii_alphabetic()) {
                text::contains_word(text, token)
            } else {
                text.contains(token)
            };
            if found && self.spec.placeholders.len() < 10_000 {
                self.spec.placeholders.push(Placeholder {
                    token: (*token).to_owned(),
                    location: location.clone(),
                    line,
                });
            }
        }
    }

    fn heading(&mut self, level: u8, text: &str, line: usize) {
        self.headings += 1;
        self.in_acceptance = false;
        let plain = markdown::plain(text);
        if level == 1 {
            if self.spec.title.is_none() {
                let title = plain
                    .split_once(':')
                    .or_else(|| plain.split_once('：'))
                    .filter(|(head, _)| {
                        head.to_lowercase().contains("specification") || head.contains("仕様")
                    })
                    .map_or(plain.as_str(), |(_, rest)| rest)
                    .trim();
                if !title.is_empty() {
                    self.spec.title = Some(title.to_owned());
                }
            }
            return;
        }
        let lower = plain.to_lowercase();
        // spec-kit's older template: one `### Primary User Story`, then `### Acceptance
        // Scenarios` (a heading, not a bold label) for it.
        if level >= 3 && self.section == Section::Stories && is_acceptance_heading(&lower) {
            if self.spec.stories.is_empty() {
                self.spec.stories.push(UserStory {
                    number: 1,
                    title: "Primary User Story".to_owned(),
                    line,
                    ..UserStory::default()
                });
            }
            self.in_acceptance = true;
            return;
        }
        let is_story = level >= 3
            && (lower.starts_with("user story")
                || lower.starts_with("primary user story")
                || lower.starts_with("ユーザーストーリー")
                || lower.contains("(priority:")
                || lower.contains("優先度"))
            && matches!(
                self.section,
                Section::Stories | Section::Preamble | Section::Other
            );
        if is_story {
            self.section = Section::Stories;
            self.section_name = "User Scenarios".to_owned();
            let number = story_number(&plain).unwrap_or(self.spec.stories.len() + 1);
            self.spec.stories.push(UserStory {
                number,
                title: story_title(&plain),
                priority: priority(&plain),
                line,
                ..UserStory::default()
            });
            return;
        }
        let next = section_of(&plain, level, self.section);
        if next != self.section || level <= 2 {
            self.section_name = plain
                .split(['*', '('])
                .next()
                .unwrap_or(&plain)
                .trim()
                .to_owned();
        }
        self.section = next;
    }

    /// Reads a list item; returns the requirement id it defines, if any.
    fn item(&mut self, raw: &str, line: usize, checkbox: bool) -> Option<String> {
        let plain = markdown::plain(raw);
        for prefix in ["FR-", "SC-"] {
            if let Some(id) = text::leading_id(raw, prefix) {
                let requirement = Requirement {
                    text: text::after_leading_id(raw, &id),
                    id: id.clone(),
                    line,
                };
                self.seen_ids.push((id.clone(), line));
                if prefix == "FR-" {
                    self.spec.requirements.push(requirement);
                } else {
                    self.spec.success_criteria.push(requirement);
                }
                return Some(id);
            }
        }
        let located = Located {
            text: plain.clone(),
            line,
        };
        match self.section {
            Section::Stories => {
                let lower = plain.to_lowercase();
                let looks_like_scenario = text::contains_word(&lower, "given")
                    && (text::contains_word(&lower, "then") || text::contains_word(&lower, "when"));
                if let Some(story) = self.spec.stories.last_mut()
                    && (self.in_acceptance || looks_like_scenario)
                {
                    story.scenarios.push(scenario(&plain, line));
                }
            }
            Section::EdgeCases => self.spec.edge_cases.push(located),
            // A checkbox under a requirements heading is a checklist's item, not a requirement.
            Section::Requirements if !plain.is_empty() && !checkbox => {
                self.spec.unnumbered_requirements.push(located);
            }
            Section::Entities => {
                let (name, description) = match markdown::bold_label(raw) {
                    Some(pair) => pair,
                    None => match plain.split_once(':') {
                        Some((name, rest)) => (name.trim().to_owned(), rest.trim().to_owned()),
                        None => (plain.clone(), String::new()),
                    },
                };
                if !name.is_empty() && name.chars().count() <= 80 {
                    self.spec.entities.push(Entity {
                        name: markdown::plain(&name),
                        description: markdown::plain(&description),
                        line,
                    });
                }
            }
            Section::Assumptions => self.spec.assumptions.push(located),
            Section::Clarifications => self.spec.clarifications.push(located),
            _ => self.obligations_in(&plain, line),
        }
        None
    }

    /// Collects the sentences of a block outside the stories, edge cases, success criteria,
    /// assumptions and checklists that state an obligation.
    fn obligations_in(&mut self, plain: &str, line: usize) {
        if !matches!(self.section, Section::Preamble | Section::Other)
            || self.obligations.len() >= 1_000
        {
            return;
        }
        for sentence in plain.split_inclusive(['.', '。', '!', '！', ';']) {
            let sentence = sentence.trim();
            if states_obligation(sentence) {
                self.obligations.push(Located {
                    text: sentence.to_owned(),
                    line,
                });
            }
        }
    }

    fn paragraph(&mut self, raw: &str, line: usize) {
        let label = markdown::bold_label(raw);
        if (self.section == Section::Preamble || self.spec.stories.is_empty())
            && let Some((name, value)) = &label
        {
            let value = markdown::plain(value);
            match name.to_lowercase().as_str() {
                "feature branch" => {
                    self.spec.branch = Some(value.trim_matches('`').to_owned());
                }
                "created" => self.spec.created = Some(value),
                "input" => {
                    let description = value
                        .strip_prefix("User description:")
                        .unwrap_or(&value)
                        .trim()
                        .trim_matches('"')
                        .to_owned();
                    self.spec.description = Some(description);
                }
                _ => {}
            }
        }
        // A free-form spec's own summary stands for the template's `**Input**` description.
        let summary_section = [
            "summary",
            "overview",
            "problem",
            "background",
            "概要",
            "背景",
        ]
        .iter()
        .any(|word| self.section_name.to_lowercase().contains(word));
        if self.spec.description.is_none()
            && label.is_none()
            && summary_section
            && matches!(self.section, Section::Other | Section::Preamble)
        {
            self.spec.description = Some(markdown::plain(raw));
        }
        if label.is_none() {
            self.obligations_in(&markdown::plain(raw), line);
        }
        if self.section != Section::Stories {
            return;
        }
        let Some(story) = self.spec.stories.last_mut() else {
            return;
        };
        match label {
            Some((name, value)) => {
                let name = name.to_lowercase();
                self.in_acceptance = is_acceptance_heading(&name);
                if name.contains("why this priority") {
                    story.why_priority = Some(markdown::plain(&value));
                } else if name.contains("independent test") {
                    story.independent_test = Some(markdown::plain(&value));
                }
            }
            None => {
                let plain = markdown::plain(raw);
                if !self.in_acceptance {
                    if !story.narrative.is_empty() {
                        story.narrative.push(' ');
                    }
                    story.narrative.push_str(&plain);
                }
            }
        }
    }
}

/// Whether a sentence states an obligation: an RFC 2119 verb (`must`, `shall`, `should`,
/// `required`) as a whole word, or a Japanese obligation ending (`なければならない`, `必要がある`).
fn states_obligation(sentence: &str) -> bool {
    let lower = sentence.to_lowercase();
    ["must", "shall", "should", "required"]
        .iter()
        .any(|word| text::contains_word(&lower, word))
        || ["なければならない", "必要がある", "べきである"]
            .iter()
            .any(|ending| sentence.contains(ending))
}

/// `Acceptance Scenarios`, `受け入れシナリオ`.
fn is_acceptance_heading(lower: &str) -> bool {
    lower.contains("acceptance") || lower.contains("受け入れ")
}

/// `User Story 12 - …` (or `ユーザーストーリー 12`) → 12.
fn story_number(heading: &str) -> Option<usize> {
    let lower = heading.to_lowercase();
    let rest = lower
        .strip_prefix("user story")
        .or_else(|| lower.strip_prefix("ユーザーストーリー"))?
        .trim_start();
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// `User Story 1 - Create an album (Priority: P1)` → `Create an album`.
fn story_title(heading: &str) -> String {
    let lower = heading.to_lowercase();
    let without_priority = match lower
        .find("(priority")
        .or_else(|| heading.find("(優先度"))
        .or_else(|| heading.find("（優先度"))
    {
        Some(at) if heading.is_char_boundary(at) => &heading[..at],
        _ => heading,
    };
    let prefix = ["user story", "ユーザーストーリー"]
        .into_iter()
        .find(|prefix| without_priority.to_lowercase().starts_with(prefix));
    let title = match prefix {
        Some(prefix) => {
            let rest = &without_priority[prefix.len()..];
            rest.trim_start()
                .trim_start_matches(|c: char| c.is_ascii_digit())
                .trim_start_matches([' ', '-', ':', '–', '—', '：', '　'])
        }
        None => without_priority,
    };
    let title = title.trim();
    if title.is_empty() {
        heading.trim().to_owned()
    } else {
        title.to_owned()
    }
}

/// `(Priority: P2)`, `(優先度: P2)` → 2.
fn priority(heading: &str) -> Option<u32> {
    let lower = heading.to_lowercase().replace('：', ":");
    let (at, key) = ["priority:", "優先度:"]
        .into_iter()
        .find_map(|key| lower.find(key).map(|at| (at, key)))?;
    let rest = lower[at + key.len()..].trim_start();
    let rest = rest.strip_prefix('p').unwrap_or(rest);
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Splits `Given …, When …, Then …` into its parts (any case, emphasis already removed).
fn scenario(plain: &str, line: usize) -> Scenario {
    let lower = plain.to_lowercase();
    let find = |word: &str, from: usize| -> Option<usize> {
        let mut start = from;
        while let Some(offset) = lower.get(start..)?.find(word) {
            let at = start + offset;
            let end = at + word.len();
            let before_ok = lower[..at]
                .chars()
                .next_back()
                .is_none_or(|c| !c.is_alphanumeric());
            let after_ok = lower[end..]
                .chars()
                .next()
                .is_none_or(|c| !c.is_alphanumeric());
            if before_ok && after_ok {
                return Some(at);
            }
            start = end;
        }
        None
    };
    let given = find("given", 0);
    let when = find("when", given.unwrap_or(0));
    let then = find("then", when.or(given).unwrap_or(0));
    let part = |start: Option<usize>, word: &str, end: Option<usize>| -> String {
        match start {
            Some(start) => {
                let from = start + word.len();
                let to = end.filter(|end| *end >= from).unwrap_or(plain.len());
                plain[from..to]
                    .trim()
                    .trim_end_matches([',', ';'])
                    .trim()
                    .to_owned()
            }
            None => String::new(),
        }
    };
    Scenario {
        given: part(given, "given", when.or(then)),
        when: part(when, "when", then),
        then: part(then, "then", None),
        text: plain.to_owned(),
        line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../../../examples/specs/001-team-photo-albums/spec.md");

    #[test]
    fn the_older_template_has_a_primary_story_with_its_scenarios() {
        let spec = Spec::parse(
            "# Feature Specification: Export\n\n## User Scenarios & Testing *(mandatory)*\n\n### Primary User Story\nA clerk exports the month's orders.\n\n### Acceptance Scenarios\n1. **Given** orders exist, **When** the clerk exports, **Then** a file is written\n2. **Given** no orders, **When** the clerk exports, **Then** an empty file is written\n\n## Requirements\n\n### Functional Requirements\n- **FR-001**: System MUST export orders.\n\n## Review & Acceptance Checklist\n- [ ] No [NEEDS CLARIFICATION] markers remain\n",
        );
        assert_eq!(spec.stories.len(), 1);
        assert_eq!(spec.stories[0].scenarios.len(), 2);
        assert!(spec.stories[0].narrative.contains("clerk exports"));
        assert!(spec.open_questions.is_empty(), "{:?}", spec.open_questions);
    }

    const FREE_FORM: &str =
        include_str!("../../../stagegate/tests/fixtures/specs/free-form/spec.md");
    const OLDER: &str =
        include_str!("../../../stagegate/tests/fixtures/specs/older-template/spec.md");

    #[test]
    fn a_spec_without_ids_gets_numbered_requirements_that_say_where_they_came_from() {
        let spec = Spec::parse(FREE_FORM);
        let derived: Vec<(&str, usize)> = spec
            .requirements
            .iter()
            .map(|requirement| (requirement.id.as_str(), requirement.line))
            .collect();
        assert_eq!(
            derived,
            vec![
                ("DR-001", 10),
                ("DR-002", 11),
                ("DR-003", 12),
                ("DR-004", 13)
            ]
        );
        assert!(
            spec.requirements[3]
                .text
                .starts_with("Never send a reminder")
        );
        assert_eq!(spec.requirements[0].source(), "derived from spec.md:10");
        assert!(spec.requirements.iter().all(Requirement::is_functional));
        // Without a requirements heading, the sentences that state an obligation are used.
        let prose = Spec::parse(
            "# Export\n\n## Overview\n\nClerks export orders. The export must include refunds; it should finish overnight.\n\n料金は毎月更新しなければならない。\n",
        );
        let texts: Vec<&str> = prose.requirements.iter().map(|r| r.text.as_str()).collect();
        assert_eq!(
            texts,
            vec![
                "The export must include refunds;",
                "it should finish overnight.",
                "料金は毎月更新しなければならない。"
            ]
        );
        // A spec with ids is never renumbered.
        assert!(
            Spec::parse(OLDER)
                .requirements
                .iter()
                .all(|r| !r.is_derived())
        );
    }

    #[test]
    fn the_older_templates_checklist_is_not_requirements() {
        let spec = Spec::parse(OLDER);
        assert!(
            spec.unnumbered_requirements.is_empty(),
            "{:?}",
            spec.unnumbered_requirements
        );
        assert!(
            spec.open_questions
                .iter()
                .all(|q| q.requirement.as_deref() == Some("FR-005"))
        );
    }

    #[test]
    fn japanese_headings_stories_and_priorities_are_read() {
        let spec = Spec::parse(
            "# 機能仕様: 請求書\n\n## ユーザーシナリオとテスト\n\n### ユーザーストーリー 1 - 請求書を作成する (優先度: P1)\n\n経理担当者が請求書を作成する。\n\n**受け入れシナリオ**:\n\n1. **Given** 顧客がいる, **When** 作成する, **Then** 請求書が保存される\n\n## 要件\n\n- **FR-001**: システムは請求書を保存しなければならない (US1)\n\n### 主要エンティティ\n\n- **請求書**: 属性: 番号、金額、期日\n",
        );
        assert_eq!(spec.stories.len(), 1);
        assert_eq!(spec.stories[0].title, "請求書を作成する");
        assert_eq!(spec.stories[0].priority, Some(1));
        assert_eq!(spec.stories[0].scenarios.len(), 1);
        assert_eq!(spec.requirements.len(), 1);
        assert_eq!(spec.entities.len(), 1);
    }

    #[test]
    fn reads_the_example_spec() {
        let spec = Spec::parse(EXAMPLE);
        assert_eq!(spec.title.as_deref(), Some("Team Photo Albums"));
        assert_eq!(spec.branch.as_deref(), Some("001-team-photo-albums"));
        assert!(
            spec.description
                .as_deref()
                .unwrap_or("")
                .starts_with("A small web app")
        );
        assert_eq!(spec.stories.len(), 3);
        let first = &spec.stories[0];
        assert_eq!(first.title, "Create an album and upload photos");
        assert_eq!(first.priority, Some(1));
        assert_eq!(first.scenarios.len(), 4);
        assert!(first.scenarios.iter().all(Scenario::is_complete));
        assert_eq!(first.scenarios[0].given, "a signed-in team member");
        assert!(
            first.narrative.contains("computer or phone"),
            "{}",
            first.narrative
        );
        assert!(first.why_priority.is_some() && first.independent_test.is_some());
        assert_eq!(spec.stories[2].priority, Some(3));
        assert_eq!(spec.edge_cases.len(), 5);
        assert_eq!(spec.requirements.len(), 11);
        assert_eq!(spec.requirements[7].id, "FR-008");
        assert!(spec.requirements[0].text.starts_with("System MUST let"));
        assert_eq!(spec.success_criteria.len(), 5);
        assert_eq!(spec.entities.len(), 7);
        assert_eq!(spec.entities[4].name, "Share Link");
        assert_eq!(spec.assumptions.len(), 5);
        assert_eq!(spec.open_questions.len(), 2);
        assert_eq!(
            spec.open_questions[0].requirement.as_deref(),
            Some("FR-008")
        );
        assert!(
            spec.open_questions[0]
                .question
                .starts_with("notification channel")
        );
        assert!(spec.notes.is_empty(), "{:?}", spec.notes);
        assert!(spec.duplicate_ids.is_empty());
    }

    #[test]
    fn a_messy_spec_is_read_with_notes() {
        let messy = "# Feature Specification: Messy\r\n\r\n## User Stories\r\n\r\n\
                     ### User Story - no number or priority\r\n\r\nSomething.\r\n\r\n\
                     1. Given a, When b, Then c\r\n\r\n## Requirements\r\n\r\n\
                     - **FR-001**: System MUST be fast. TODO\r\n- **FR-001**: System MUST be \
                     fast too\r\n- a requirement without id\r\n- FR-002 [NEEDS CLARIFICATION: \
                     which?\r\n";
        let spec = Spec::parse(messy);
        assert_eq!(spec.stories.len(), 1);
        assert_eq!(spec.stories[0].number, 1);
        assert_eq!(spec.stories[0].scenarios.len(), 1);
        assert_eq!(spec.stories[0].scenarios[0].then, "c");
        assert_eq!(spec.requirements.len(), 3);
        assert_eq!(spec.duplicate_ids.len(), 1);
        assert_eq!(spec.unnumbered_requirements.len(), 1);
        assert_eq!(spec.placeholders.len(), 1);
        assert_eq!(spec.open_questions.len(), 1);
        assert_eq!(spec.open_questions[0].question, "which?");
        assert!(
            spec.notes
                .iter()
                .any(|note| note.contains("FR-001 is defined more than once"))
        );
        assert!(spec.notes.iter().any(|note| note.contains("no `(Priority")));
        assert!(
            spec.notes
                .iter()
                .any(|note| note.contains("success criteria"))
        );
    }

    #[test]
    fn empty_binary_and_foreign_inputs_give_notes() {
        assert_eq!(Spec::parse("").notes, vec!["spec.md is empty"]);
        assert!(Spec::parse("\0\0\u{1}binary").notes[0].contains("does not look like text"));
        let json = Spec::parse("{\"spec\": [1, 2, 3]}");
        assert!(
            json.notes
                .iter()
                .any(|note| note.contains("no markdown headings"))
        );
        assert!(json.requirements.is_empty());
    }

    #[test]
    fn a_two_megabyte_spec_finishes() {
        let mut big = String::from("# Feature Specification: Big\n\n## Requirements\n\n");
        let mut index = 0;
        while big.len() < 2 << 20 {
            index += 1;
            big.push_str(&format!(
                "- **FR-{index:05}**: System MUST store item {index} fast [NEEDS CLARIFICATION: \
                 how?]\n"
            ));
        }
        big.push_str(&"x".repeat(100_000));
        let started = std::time::Instant::now();
        let spec = Spec::parse(&big);
        assert_eq!(spec.requirements.len(), index);
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
    }
}
