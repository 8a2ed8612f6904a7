//! Stage C's analysis, `/speckit.analyze` style: findings in the six categories with
//! severities, requirement-to-task coverage, unmapped tasks and the metrics block.
//!
//! Computed once per call from spec.md, plan.md, tasks.md and the constitution; the four
//! quality reviewers each report their share of it (see [`Lens`]), the lead reviewer merges
//! their tables, and the quality report's synthesizer writes all of it.
//!
//! Rules (severity in brackets):
//! - Duplication: an id defined twice [HIGH]; two requirements sharing ≥ 60% of their key words
//!   (Jaccard; the first 400 requirements are compared pairwise) [HIGH].
//! - Ambiguity: `[NEEDS CLARIFICATION]` [HIGH]; `TODO`/`TBD`/`???` [MEDIUM]; a vague adjective
//!   (fast, scalable, secure, intuitive, robust, user-friendly …) in a requirement without a
//!   number [HIGH for performance/security words, else MEDIUM]; `NEEDS CLARIFICATION` left in
//!   plan.md's Technical Context [MEDIUM].
//! - Underspecification: a success criterion without a number [HIGH]; a story without
//!   acceptance scenarios [HIGH]; an incomplete Given/When/Then [LOW]; a requirement item
//!   without an id [MEDIUM]; no edge cases [MEDIUM]; no success criteria [HIGH]; a task that
//!   implements a requirement with an open clarification [HIGH]; tasks naming no file [LOW].
//! - Constitution alignment: a principle marked as failed or violated in the plan [CRITICAL];
//!   a test-first MUST with no test task [CRITICAL]; a principle the plan's Constitution Check
//!   does not mention [MEDIUM]; no Constitution Check at all [HIGH].
//! - Coverage gaps: no tasks.md [CRITICAL]; a functional requirement with no task [HIGH]; a
//!   success criterion with no task [MEDIUM]; a story with no task [HIGH]; access-control
//!   risks with no security task [HIGH]; open checklist items [LOW].
//! - Inconsistency: a task naming an unknown requirement [HIGH] or story [MEDIUM]; a task
//!   depending on an unknown or later task [MEDIUM]; an entity named differently in plan and
//!   spec (terminology drift) [MEDIUM]; a plan entity the spec does not define [LOW]; a spec
//!   entity the plan never names [MEDIUM]; unchecked tasks when the implementation should be
//!   complete [MEDIUM].

use std::collections::{BTreeSet, HashSet};

use crate::analysts::risk::{self, Severity};
use crate::analysts::traceability::{self, Coverage};
use crate::markdown;
use crate::speckit::{Feature, Task};
use crate::text;

/// `/speckit.analyze`'s six categories.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Category {
    Duplication,
    Ambiguity,
    Underspecification,
    ConstitutionAlignment,
    CoverageGap,
    Inconsistency,
}

impl Category {
    pub(crate) const ALL: [Category; 6] = [
        Category::Duplication,
        Category::Ambiguity,
        Category::Underspecification,
        Category::ConstitutionAlignment,
        Category::CoverageGap,
        Category::Inconsistency,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Category::Duplication => "Duplication",
            Category::Ambiguity => "Ambiguity",
            Category::Underspecification => "Underspecification",
            Category::ConstitutionAlignment => "Constitution Alignment",
            Category::CoverageGap => "Coverage Gap",
            Category::Inconsistency => "Inconsistency",
        }
    }

    fn prefix(self) -> char {
        match self {
            Category::Duplication => 'D',
            Category::Ambiguity => 'A',
            Category::Underspecification => 'U',
            Category::ConstitutionAlignment => 'C',
            Category::CoverageGap => 'G',
            Category::Inconsistency => 'I',
        }
    }
}

/// Which quality reviewer reports a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lens {
    Completeness,
    Feasibility,
    Security,
    Consistency,
}

/// One finding.
#[derive(Debug, Clone)]
pub(crate) struct Finding {
    pub(crate) id: String,
    pub(crate) category: Category,
    pub(crate) severity: Severity,
    pub(crate) location: String,
    pub(crate) summary: String,
    pub(crate) recommendation: String,
    /// Reported by the security reviewer as well.
    pub(crate) security: bool,
    /// Reported by the feasibility reviewer as well.
    pub(crate) feasibility: bool,
}

impl Finding {
    /// Whether the reviewer with this lens reports it.
    pub(crate) fn seen_by(&self, lens: Lens) -> bool {
        match lens {
            Lens::Completeness => matches!(
                self.category,
                Category::CoverageGap | Category::Underspecification
            ),
            Lens::Consistency => matches!(
                self.category,
                Category::Duplication | Category::Inconsistency | Category::Ambiguity
            ),
            Lens::Feasibility => {
                self.feasibility || self.category == Category::ConstitutionAlignment
            }
            Lens::Security => self.security,
        }
    }
}

/// The analysis of one feature.
pub(crate) struct Analysis {
    pub(crate) findings: Vec<Finding>,
    pub(crate) coverage: Coverage,
    pub(crate) tasks: Vec<Task>,
    pub(crate) has_tasks: bool,
    pub(crate) has_constitution: bool,
    pub(crate) requirement_count: usize,
}

impl Analysis {
    pub(crate) fn count(&self, category: Category) -> usize {
        self.findings
            .iter()
            .filter(|finding| finding.category == category)
            .count()
    }

    pub(crate) fn critical(&self) -> usize {
        self.findings
            .iter()
            .filter(|finding| finding.severity == Severity::Critical)
            .count()
    }
}

struct Builder {
    findings: Vec<Finding>,
}

impl Builder {
    fn add(
        &mut self,
        category: Category,
        severity: Severity,
        location: impl Into<String>,
        summary: impl Into<String>,
        recommendation: impl Into<String>,
    ) -> &mut Finding {
        self.findings.push(Finding {
            id: String::new(),
            category,
            severity,
            location: location.into(),
            summary: summary.into(),
            recommendation: recommendation.into(),
            security: false,
            feasibility: false,
        });
        let last = self.findings.len() - 1;
        &mut self.findings[last]
    }
}

/// Words of a requirement that make it a security requirement.
const SECURITY_WORDS: &[&str] = &[
    "access",
    "account",
    "admin",
    "auth",
    "permission",
    "private",
    "privacy",
    "secure",
    "security",
    "share",
    "link",
    "token",
    "password",
    "location",
    "gps",
    "exif",
    "personal",
    "encrypt",
    "sign",
];

fn is_security_text(text: &str) -> bool {
    let lower = text.to_lowercase();
    SECURITY_WORDS.iter().any(|word| lower.contains(word))
}

/// Performance and security adjectives make an ambiguity HIGH.
const SHARP_VAGUE: &[&str] = &[
    "fast",
    "quick",
    "quickly",
    "scalable",
    "secure",
    "securely",
    "performant",
    "responsive",
    "real-time",
    "reliable",
    "robust",
    "high-performance",
];

/// Most requirements compared pairwise for near-duplicates.
const DUPLICATE_LIMIT: usize = 400;

pub(crate) fn analyze(feature: &Feature) -> Analysis {
    let spec = &feature.spec;
    let mut builder = Builder {
        findings: Vec::new(),
    };
    let empty = Vec::new();
    let tasks: &Vec<Task> = feature.tasks.as_ref().map_or(&empty, |list| &list.tasks);
    let coverage = traceability::coverage(spec, tasks);

    if !feature.has_spec {
        builder.add(
            Category::CoverageGap,
            Severity::Critical,
            "spec.md",
            "spec.md is missing: nothing can be checked against the requirements",
            "Run /speckit.specify and approve the spec before analyzing",
        );
    }

    // Duplication.
    for (id, lines) in &spec.duplicate_ids {
        let list: Vec<String> = lines.iter().map(|line| format!("spec.md:{line}")).collect();
        builder.add(
            Category::Duplication,
            Severity::High,
            list.join(", "),
            format!("{id} is defined {} times", lines.len()),
            "Renumber or merge the definitions so each id names one requirement",
        );
    }
    let requirements: Vec<_> = spec
        .requirements
        .iter()
        .chain(&spec.success_criteria)
        .take(DUPLICATE_LIMIT)
        .collect();
    let word_sets: Vec<BTreeSet<String>> = requirements
        .iter()
        .map(|requirement| text::keywords(&requirement.text))
        .collect();
    for first in 0..requirements.len() {
        for second in first + 1..requirements.len() {
            if requirements[first].id == requirements[second].id {
                continue;
            }
            let (a, b) = (&word_sets[first], &word_sets[second]);
            let union = a.union(b).count();
            if union < 3 {
                continue;
            }
            let shared = a.intersection(b).count();
            if shared * 10 >= union * 6 {
                builder.add(
                    Category::Duplication,
                    Severity::High,
                    format!("{}, {}", requirements[first].id, requirements[second].id),
                    format!(
                        "{} and {} are near-duplicates ({shared} of {union} key words shared)",
                        requirements[first].id, requirements[second].id
                    ),
                    "Merge them into one requirement, or state what distinguishes them",
                );
            }
        }
    }

    // Ambiguity.
    for question in &spec.open_questions {
        let finding = builder.add(
            Category::Ambiguity,
            Severity::High,
            question.location.clone(),
            format!(
                "Unresolved [NEEDS CLARIFICATION: {}]",
                text::truncate(&question.question, 120)
            ),
            "Answer it with /speckit.clarify and update the requirement",
        );
        finding.feasibility = true;
        finding.security = is_security_text(&question.question);
    }
    for placeholder in &spec.placeholders {
        builder.add(
            Category::Ambiguity,
            Severity::Medium,
            format!("{} (spec.md:{})", placeholder.location, placeholder.line),
            format!("Placeholder `{}` left in the spec", placeholder.token),
            "Replace the placeholder with the decided text",
        );
    }
    for requirement in spec.requirements.iter().chain(&spec.success_criteria) {
        if text::has_number(&requirement.text) {
            continue;
        }
        let vague = text::vague_words(&requirement.text);
        if vague.is_empty() {
            continue;
        }
        let sharp = vague.iter().any(|word| SHARP_VAGUE.contains(word));
        let finding = builder.add(
            Category::Ambiguity,
            if sharp {
                Severity::High
            } else {
                Severity::Medium
            },
            requirement.id.clone(),
            format!("Vague wording without a measure: {}", vague.join(", ")),
            "Replace each adjective with a measurable criterion (a number, a limit, a percentile)",
        );
        finding.security = vague.iter().any(|word| word.starts_with("secur"));
    }
    for story in &spec.stories {
        let vague = text::vague_words(&story.title);
        if !vague.is_empty() {
            builder.add(
                Category::Ambiguity,
                Severity::Low,
                story.label(),
                format!("Story title uses vague wording: {}", vague.join(", ")),
                "Name the observable outcome instead",
            );
        }
    }
    if let Some(plan) = &feature.plan {
        for (key, value) in &plan.technical_context {
            if value.to_uppercase().contains("NEEDS CLARIFICATION") {
                let finding = builder.add(
                    Category::Ambiguity,
                    Severity::Medium,
                    format!("plan.md Technical Context: {key}"),
                    format!("{key} is still NEEDS CLARIFICATION"),
                    "Decide it in research.md and update the plan",
                );
                finding.feasibility = true;
            }
        }
    }

    // Underspecification.
    if feature.has_spec && spec.success_criteria.is_empty() {
        builder.add(
            Category::Underspecification,
            Severity::High,
            "spec.md Success Criteria",
            "No measurable success criteria (SC-###)",
            "Add technology-agnostic, measurable outcomes",
        );
    }
    for criterion in &spec.success_criteria {
        if !text::has_number(&criterion.text) {
            builder.add(
                Category::Underspecification,
                Severity::High,
                criterion.id.clone(),
                "Success criterion states no measurable value",
                "Add a number: a time, a percentage, a count",
            );
        }
    }
    for story in &spec.stories {
        if story.scenarios.is_empty() {
            builder.add(
                Category::Underspecification,
                Severity::High,
                story.label(),
                format!("\"{}\" has no acceptance scenarios", story.title),
                "Add Given/When/Then scenarios that a test can check",
            );
        }
        for (index, scenario) in story.scenarios.iter().enumerate() {
            if !scenario.is_complete() {
                builder.add(
                    Category::Underspecification,
                    Severity::Low,
                    format!("{}-AS{}", story.label(), index + 1),
                    "Acceptance scenario lacks a Given, When or Then",
                    "Write it as Given <state>, When <action>, Then <outcome>",
                );
            }
        }
    }
    for item in &spec.unnumbered_requirements {
        builder.add(
            Category::Underspecification,
            Severity::Medium,
            format!("spec.md:{}", item.line),
            format!(
                "Requirement without an FR id: \"{}\"",
                text::truncate(&item.text, 80)
            ),
            "Give it an FR-### id so that tasks and tests can refer to it",
        );
    }
    if feature.has_spec && spec.edge_cases.is_empty() && !spec.stories.is_empty() {
        builder.add(
            Category::Underspecification,
            Severity::Medium,
            "spec.md Edge Cases",
            "No edge cases are listed",
            "List failure, limit, empty and concurrent cases with their expected handling",
        );
    }
    let open_requirements: HashSet<&str> = spec
        .open_questions
        .iter()
        .filter_map(|question| question.requirement.as_deref())
        .collect();
    for task in tasks {
        let blocked: Vec<&String> = task
            .requirements
            .iter()
            .filter(|id| open_requirements.contains(id.as_str()))
            .collect();
        if !blocked.is_empty() {
            let names: Vec<&str> = blocked.iter().map(|id| id.as_str()).collect();
            let finding = builder.add(
                Category::Underspecification,
                Severity::High,
                task.id.clone(),
                format!(
                    "{} implements {} whose clarification is still open",
                    task.id,
                    names.join(", ")
                ),
                "Resolve the clarification before implementing, or implement behind a setting",
            );
            finding.feasibility = true;
        }
    }
    let pathless: Vec<&str> = tasks
        .iter()
        .filter(|task| task.paths.is_empty())
        .map(|task| task.id.as_str())
        .take(20)
        .collect();
    if !pathless.is_empty() {
        let finding = builder.add(
            Category::Underspecification,
            Severity::Low,
            pathless.join(", "),
            "Tasks name no file path",
            "Name the file each task changes, as spec-kit's task format asks",
        );
        finding.feasibility = true;
    }

    // Constitution alignment. spec-kit's unfilled template states no principle: its
    // placeholders are reported once, never checked as principles.
    let ratified = feature.constitution.as_ref().filter(|constitution| {
        let Some((token, line)) = constitution.placeholder() else {
            return true;
        };
        builder.add(
            Category::ConstitutionAlignment,
            Severity::Medium,
            format!("constitution.md:{line}"),
            format!("The constitution is spec-kit's unfilled template (`{token}`): no principle can be checked"),
            "Fill it with /speckit.constitution, then re-run /speckit.plan's Constitution Check",
        );
        false
    });
    if let Some(constitution) = ratified {
        let check: String = feature
            .plan
            .as_ref()
            .map(|plan| plan.constitution_check.join("\n"))
            .unwrap_or_default();
        let check_lower = check.to_lowercase();
        let has_check = feature
            .plan
            .as_ref()
            .is_some_and(|plan| !plan.constitution_check.is_empty());
        if feature.plan.is_some() && !has_check && !constitution.principles.is_empty() {
            builder.add(
                Category::ConstitutionAlignment,
                Severity::High,
                "plan.md Constitution Check",
                "The plan has no Constitution Check against the principles",
                "Evaluate every principle in plan.md's Constitution Check",
            );
        }
        for principle in &constitution.principles {
            let name = principle.name.to_lowercase();
            let line = check
                .lines()
                .find(|line| line.to_lowercase().contains(&name));
            if let Some(line) = line {
                let lower = line.to_lowercase();
                if lower.contains("fail") || lower.contains("violat") || line.contains('❌') {
                    builder.add(
                        Category::ConstitutionAlignment,
                        Severity::Critical,
                        format!("plan.md Constitution Check: {}", principle.name),
                        format!("The plan fails principle \"{}\"", principle.name),
                        "Change the plan to comply, or justify it in Complexity Tracking and amend the constitution explicitly",
                    );
                }
            } else if has_check && !check_lower.is_empty() {
                builder.add(
                    Category::ConstitutionAlignment,
                    Severity::Medium,
                    format!("principle {}", principle.name),
                    format!(
                        "The Constitution Check does not evaluate \"{}\"",
                        principle.name
                    ),
                    "Add a line for the principle with its status, or a justified exception",
                );
            }
            let test_first = principle
                .musts
                .iter()
                .any(|must| must.to_lowercase().contains("test"));
            let test_tasks = tasks
                .iter()
                .any(|task| task.description.to_lowercase().contains("test"));
            if test_first && feature.tasks.is_some() && !test_tasks {
                builder.add(
                    Category::ConstitutionAlignment,
                    Severity::Critical,
                    format!("principle {}", principle.name),
                    format!(
                        "\"{}\" requires tests, and no task writes one",
                        principle.name
                    ),
                    "Add test tasks before the implementation tasks of each story",
                );
            }
        }
    }

    // Coverage gaps.
    if feature.tasks.is_none() {
        let finding = builder.add(
            Category::CoverageGap,
            Severity::Critical,
            "tasks.md",
            "tasks.md is missing: no requirement can be traced to a task",
            "Run /speckit.tasks before analyzing",
        );
        finding.feasibility = true;
    } else {
        for row in &coverage.rows {
            if row.tasks.is_empty() {
                let is_fr = !row.id.starts_with("SC-");
                let text = spec.requirement(&row.id).map_or("", |r| r.text.as_str());
                let finding = builder.add(
                    Category::CoverageGap,
                    if is_fr {
                        Severity::High
                    } else {
                        Severity::Medium
                    },
                    row.id.clone(),
                    format!("No task implements or verifies {}: {}", row.id, row.summary),
                    if is_fr {
                        "Add a task (and a test) that names the requirement id"
                    } else {
                        "Add a measurement task (load test, timing check, usability test)"
                    },
                );
                finding.security = is_security_text(text);
            }
        }
        // A story is covered by a task labelled with it, or (tasks.md of spec-kit's older
        // template labels none) by a task that does one of its requirements.
        let traces = traceability::trace(spec);
        for story in &spec.stories {
            let label = story.label();
            let labelled = tasks
                .iter()
                .any(|task| task.story.as_deref() == Some(label.as_str()));
            let done_by_requirement = traces.iter().any(|trace| {
                trace
                    .stories
                    .iter()
                    .any(|other| other.number == story.number)
                    && coverage.covers(&trace.requirement.id)
            });
            if !labelled && !done_by_requirement {
                builder.add(
                    Category::CoverageGap,
                    Severity::High,
                    label.clone(),
                    format!("No task is labelled [{label}] (\"{}\")", story.title),
                    "Add a phase of tasks for the story",
                );
            }
        }
        let access_risk = risk::risks(spec)
            .iter()
            .any(|risk| risk.category.starts_with("Authentication"));
        let security_tasks = tasks.iter().any(|task| {
            let lower = task.description.to_lowercase();
            ["auth", "access", "permission", "security", "session"]
                .iter()
                .any(|word| lower.contains(word))
        });
        if access_risk && !security_tasks {
            let finding = builder.add(
                Category::CoverageGap,
                Severity::High,
                "tasks.md",
                "Access-control requirements exist but no task implements or tests access checks",
                "Add tasks for the access checks and a test per role, including the anonymous case",
            );
            finding.security = true;
        }
    }
    for (name, checklist) in &feature.checklists {
        let open: Vec<&str> = checklist
            .open_items()
            .map(|item| item.id.as_str())
            .take(20)
            .collect();
        if !open.is_empty() {
            builder.add(
                Category::CoverageGap,
                Severity::Low,
                name.clone(),
                format!("Open checklist items: {}", open.join(", ")),
                "Resolve or consciously waive each item",
            );
        }
    }

    // Inconsistency.
    let story_labels: HashSet<String> = spec.stories.iter().map(|story| story.label()).collect();
    let task_ids: Vec<&str> = tasks.iter().map(|task| task.id.as_str()).collect();
    for (position, task) in tasks.iter().enumerate() {
        for id in &task.requirements {
            if feature.has_spec && spec.requirement(id).is_none() {
                builder.add(
                    Category::Inconsistency,
                    Severity::High,
                    task.id.clone(),
                    format!("{} refers to {id}, which the spec does not define", task.id),
                    "Fix the reference or add the requirement to the spec",
                );
            }
        }
        if let Some(story) = &task.story
            && feature.has_spec
            && !spec.stories.is_empty()
            && !story_labels.contains(story)
        {
            builder.add(
                Category::Inconsistency,
                Severity::Medium,
                task.id.clone(),
                format!(
                    "{} is labelled [{story}], which is not a story of the spec",
                    task.id
                ),
                "Relabel the task with an existing story",
            );
        }
        for dependency in &task.depends_on {
            match task_ids.iter().position(|id| id == dependency) {
                None => {
                    let finding = builder.add(
                        Category::Inconsistency,
                        Severity::Medium,
                        task.id.clone(),
                        format!("{} depends on {dependency}, which does not exist", task.id),
                        "Fix the dependency",
                    );
                    finding.feasibility = true;
                }
                Some(other) if other > position => {
                    let finding = builder.add(
                        Category::Inconsistency,
                        Severity::Medium,
                        task.id.clone(),
                        format!("{} depends on the later task {dependency}", task.id),
                        "Reorder the tasks so dependencies come first",
                    );
                    finding.feasibility = true;
                }
                Some(_) => {}
            }
        }
    }
    if let (Some(plan), Some(plan_text)) = (&feature.plan, feature.text("plan.md")) {
        terminology(feature, plan, plan_text, &mut builder);
    }
    // Stable ids: per category, in the order found.
    for category in Category::ALL {
        let mut number = 0;
        for finding in builder
            .findings
            .iter_mut()
            .filter(|f| f.category == category)
        {
            number += 1;
            finding.id = format!("{}{number}", category.prefix());
        }
    }
    Analysis {
        findings: builder.findings,
        has_tasks: feature.tasks.is_some(),
        has_constitution: feature.constitution.is_some(),
        requirement_count: coverage.rows.len(),
        tasks: tasks.clone(),
        coverage,
    }
}

/// Entity names in plan vs spec: drift (same words, different name), plan-only entities and
/// spec entities the plan never names.
fn terminology(
    feature: &Feature,
    plan: &crate::speckit::Plan,
    plan_text: &str,
    builder: &mut Builder,
) {
    let spec = &feature.spec;
    if spec.entities.is_empty() {
        return;
    }
    let spec_keys: Vec<(String, &str)> = spec
        .entities
        .iter()
        .map(|entity| (text::name_key(&entity.name), entity.name.as_str()))
        .collect();
    let plan_lower = plan_text.to_lowercase();
    let plan_compact = text::name_key(plan_text);
    for entity in &spec.entities {
        let name = entity.name.to_lowercase();
        if !plan_lower.contains(&name) && !plan_compact.contains(&text::name_key(&entity.name)) {
            builder.add(
                Category::Inconsistency,
                Severity::Medium,
                format!("entity {}", entity.name),
                format!("Spec entity \"{}\" is not named in plan.md", entity.name),
                "Name it in the plan's data model or explain why it is not needed",
            );
        }
    }
    let lines: Vec<&str> = plan_text.lines().collect();
    let mut reported: HashSet<String> = HashSet::new();
    for (term, line) in &plan.terms {
        let key = text::name_key(term);
        if spec_keys.iter().any(|(spec_key, _)| spec_key == &key) || !reported.insert(key.clone()) {
            continue;
        }
        let words: BTreeSet<String> = split_camel(term).iter().map(|w| text::stem(w)).collect();
        let similar = spec.entities.iter().find(|entity| {
            let entity_words: BTreeSet<String> =
                text::words(&entity.name).map(|w| text::stem(&w)).collect();
            words.intersection(&entity_words).count() >= 1 && words.len() >= 2
        });
        let context = lines
            .get(line.saturating_sub(1))
            .map(|text| text.to_lowercase())
            .unwrap_or_default();
        if let Some(entity) = similar {
            builder.add(
                Category::Inconsistency,
                Severity::Medium,
                format!("plan.md:{line}"),
                format!(
                    "Terminology drift: plan says \"{term}\", spec says \"{}\"",
                    entity.name
                ),
                "Use the spec's name everywhere (or rename it in the spec)",
            );
        } else if ["model", "entity", "table", "schema"]
            .iter()
            .any(|word| context.contains(word))
        {
            builder.add(
                Category::Inconsistency,
                Severity::Low,
                format!("plan.md:{line}"),
                format!("Plan entity \"{term}\" is not a key entity of the spec"),
                "Add it to the spec's Key Entities or remove it from the plan",
            );
        }
    }
}

/// `ShareLinkToken` → `["share", "link", "token"]`.
fn split_camel(term: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    for character in term.chars() {
        if character.is_uppercase() && !current.is_empty() {
            words.push(current.to_lowercase());
            current.clear();
        }
        current.push(character);
    }
    if !current.is_empty() {
        words.push(current.to_lowercase());
    }
    words
}

/// Writes the findings table.
pub(crate) fn findings_table(out: &mut String, findings: &[&Finding]) {
    let rows: Vec<Vec<String>> = findings
        .iter()
        .map(|finding| {
            vec![
                finding.id.clone(),
                finding.category.as_str().to_owned(),
                finding.severity.as_str().to_owned(),
                finding.location.clone(),
                finding.summary.clone(),
                finding.recommendation.clone(),
            ]
        })
        .collect();
    markdown::table(
        out,
        &[
            "ID",
            "Category",
            "Severity",
            "Location",
            "Summary",
            "Recommendation",
        ],
        &rows,
    );
}

/// Writes the coverage table and the unmapped tasks.
pub(crate) fn coverage_section(out: &mut String, analysis: &Analysis) {
    out.push_str("## Coverage\n\n");
    if !analysis.has_tasks {
        out.push_str(
            "tasks.md was not among the inputs: no requirement can be mapped to a task.\n\n",
        );
    }
    if analysis.coverage.rows.is_empty() {
        out.push_str("No requirements to map.\n\n");
    } else {
        let rows: Vec<Vec<String>> = analysis
            .coverage
            .rows
            .iter()
            .map(|row| {
                vec![
                    row.id.clone(),
                    if row.tasks.is_empty() {
                        "no".to_owned()
                    } else {
                        "yes".to_owned()
                    },
                    row.tasks.join(", "),
                    if row.tasks.is_empty() {
                        row.summary.clone()
                    } else if row.by_id {
                        "named by id".to_owned()
                    } else {
                        format!("matched by what the tasks do: {}", row.terms.join(", "))
                    },
                ]
            })
            .collect();
        markdown::table(
            out,
            &["Requirement Key", "Has Task?", "Task IDs", "Notes"],
            &rows,
        );
        out.push('\n');
    }
    out.push_str("## Unmapped Tasks\n\n");
    if analysis.coverage.unmapped.is_empty() {
        out.push_str("None: every task maps to a requirement or a story.\n\n");
    } else {
        for position in &analysis.coverage.unmapped {
            if let Some(task) = analysis.tasks.get(*position) {
                out.push_str(&format!(
                    "- {}: {}\n",
                    task.id,
                    text::truncate(&task.description, 120)
                ));
            }
        }
        out.push_str("\nSetup, foundation and polish tasks are often unmapped by design; check the others.\n\n");
    }
}

/// Writes the metrics block.
pub(crate) fn metrics_section(out: &mut String, analysis: &Analysis) {
    out.push_str("## Metrics\n\n");
    out.push_str(&format!(
        "- Total Requirements: {}\n",
        analysis.requirement_count
    ));
    out.push_str(&format!("- Total Tasks: {}\n", analysis.tasks.len()));
    out.push_str(&format!(
        "- Coverage %: {:.0}%\n",
        analysis.coverage.percent()
    ));
    out.push_str(&format!(
        "- Ambiguity Count: {}\n",
        analysis.count(Category::Ambiguity)
    ));
    out.push_str(&format!(
        "- Duplication Count: {}\n",
        analysis.count(Category::Duplication)
    ));
    out.push_str(&format!(
        "- Critical Issues Count: {}\n\n",
        analysis.critical()
    ));
}

/// Findings sorted most severe first, then by category and id (stable and deterministic).
pub(crate) fn prioritized(findings: &[Finding]) -> Vec<&Finding> {
    let mut sorted: Vec<&Finding> = findings.iter().collect();
    sorted.sort_by(|a, b| {
        a.severity
            .cmp(&b.severity)
            .then(a.category.cmp(&b.category))
            .then(id_number(&a.id).cmp(&id_number(&b.id)))
    });
    sorted
}

fn id_number(id: &str) -> u64 {
    id.trim_start_matches(|c: char| c.is_ascii_alphabetic())
        .parse()
        .unwrap_or(u64::MAX)
}
