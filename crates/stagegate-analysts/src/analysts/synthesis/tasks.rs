//! `tasks.md`, prep's optional artifact, in spec-kit's format (`/speckit.tasks`): phases Setup,
//! Foundational, one per user story in priority order and Polish, with
//! `- [ ] T001 [P] [US1] description in path` lines and a dependencies section.
//!
//! - No tasks.md yet: the breakdown of [`task_breakdown`], every task traced to the spec or
//!   the plan.
//! - A tasks.md with tasks: kept as the team wrote it, byte for byte; when requirements are
//!   left that no task covers, a phase of tasks for them is appended (the gate shows the
//!   change and keeps the previous file); when none are left, `SKIP` (nothing to write).
//! - A tasks.md without any task: `SKIP` — it is the team's text, not ours to replace.

use crate::analysts::Call;
use crate::analysts::task_breakdown::{self, ADDED, PlannedTask};
use crate::speckit::{Feature, TaskList};
use crate::text;

/// The answer that leaves an optional artifact unwritten.
pub(crate) const SKIP: &str = "SKIP";

pub(crate) fn write(call: &Call<'_>) -> String {
    let feature = &call.feature;
    match (&feature.tasks, feature.text("tasks.md")) {
        (Some(list), Some(existing)) if !list.tasks.is_empty() => extended(feature, list, existing),
        (Some(_), Some(existing)) if !existing.trim().is_empty() => SKIP.to_owned(),
        _ => generated(feature),
    }
}

/// The existing tasks.md with a phase of tasks for the requirements none of its tasks covers;
/// `SKIP` when there are none.
fn extended(feature: &Feature, list: &TaskList, existing: &str) -> String {
    let added: Vec<PlannedTask> = task_breakdown::tasks(feature)
        .into_iter()
        .filter(|task| task.phase == ADDED)
        .collect();
    if added.is_empty() {
        return SKIP.to_owned();
    }
    let next_phase = list
        .phases
        .iter()
        .filter_map(|phase| phase_number(&phase.title))
        .max()
        .map_or(String::new(), |last| format!("Phase {}: ", last + 1));
    let mut out = existing.trim_end().to_owned();
    out.push_str(&format!("\n\n## {next_phase}{ADDED}\n\n"));
    out.push_str("_stagegate's built-in prep found no task above that names these requirements, or is labelled with their story and shares their terms. Each task quotes the requirement and where it is written; delete one that another task already does._\n\n");
    for task in &added {
        out.push_str(&task.line());
        out.push('\n');
    }
    out
}

/// `Phase 4: …` → 4.
fn phase_number(title: &str) -> Option<usize> {
    let rest = title.trim().strip_prefix("Phase")?.trim_start();
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// A new tasks.md from the breakdown.
fn generated(feature: &Feature) -> String {
    let spec = &feature.spec;
    let tasks = task_breakdown::tasks(feature);
    let mut out = format!("# Tasks: {}\n\n", feature.name);
    if let Some(branch) = &spec.branch {
        out.push_str(&format!(
            "**Input**: Design documents from `specs/{branch}/`\n"
        ));
    }
    out.push_str("**Prerequisites**: plan.md (approved), spec.md (user stories, requirements)\n\n");
    out.push_str("_Written by stagegate's built-in prep stage: each task is traced to spec.md (its stories, acceptance scenarios, requirements, key entities and success criteria) or to plan.md (its Project Structure and Technical Context) and says where; what they do not say is marked as needing clarification._\n\n");
    out.push_str("## Format: `[ID] [P?] [Story] Description`\n\n- **[P]**: can run in parallel (different files, no dependencies)\n- **[Story]**: the user story the task belongs to (US1, US2, …)\n\n");
    // Phase 2 is written even without tasks, so that the phases read in spec-kit's order.
    let (setup, rest) = tasks.split_at(
        tasks
            .iter()
            .position(|task| task.phase != task_breakdown::SETUP)
            .unwrap_or(tasks.len()),
    );
    let header = |task: &PlannedTask| story_header(feature, task);
    out.push_str(&task_breakdown::render(setup, "##", header));
    if !rest
        .iter()
        .any(|task| task.phase == task_breakdown::FOUNDATIONAL)
    {
        out.push_str(&format!(
            "## {}\n\nspec.md names no key entities: nothing is known to block the stories.\n\n",
            task_breakdown::FOUNDATIONAL
        ));
    }
    out.push_str(&task_breakdown::render(rest, "##", header));
    out.push_str("## Dependencies & Execution Order\n\n");
    for line in task_breakdown::dependencies(feature, &tasks) {
        out.push_str(&format!("- {line}\n"));
    }
    out.push('\n');
    out
}

/// A story phase's `**Goal**` and `**Independent Test**`, from the story as spec.md tells it.
fn story_header(feature: &Feature, task: &PlannedTask) -> String {
    let Some(story) = task.story.as_ref().and_then(|label| {
        feature
            .spec
            .stories
            .iter()
            .find(|story| &story.label() == label)
    }) else {
        return String::new();
    };
    let goal = if story.narrative.trim().is_empty() {
        format!(
            "NEEDS CLARIFICATION (spec.md:{} tells no story)",
            story.line
        )
    } else {
        format!(
            "{} (spec.md:{})",
            text::truncate(story.narrative.trim(), 300),
            story.line
        )
    };
    let test = story.independent_test.as_deref().map_or_else(
        || "NEEDS CLARIFICATION (spec.md gives none for this story)".to_owned(),
        |test| text::truncate(test.trim(), 300),
    );
    format!("**Goal**: {goal}\n\n**Independent Test**: {test}\n\n")
}

#[cfg(test)]
mod tests {
    use stagegate_engine::prompt::NamedText;

    use super::*;

    const CURRENT_SPEC: &str =
        include_str!("../../../../stagegate/tests/fixtures/specs/current-template/spec.md");
    const CURRENT_PLAN: &str =
        include_str!("../../../../stagegate/tests/fixtures/specs/current-template/plan.md");
    const OLDER_SPEC: &str =
        include_str!("../../../../stagegate/tests/fixtures/specs/older-template/spec.md");
    const OLDER_TASKS: &str =
        include_str!("../../../../stagegate/tests/fixtures/specs/older-template/tasks.md");
    const JAPANESE_SPEC: &str =
        include_str!("../../../../stagegate/tests/fixtures/specs/japanese/spec.md");
    const JAPANESE_TASKS: &str =
        include_str!("../../../../stagegate/tests/fixtures/specs/japanese/tasks.md");

    fn feature(files: &[(&str, &str)]) -> Feature {
        let files: Vec<NamedText> = files
            .iter()
            .map(|(name, content)| NamedText {
                name: (*name).to_owned(),
                content: (*content).to_owned(),
            })
            .collect();
        Feature::from_files(&files, &[])
    }

    #[test]
    fn a_new_tasks_md_is_in_spec_kits_format_and_traced_to_the_inputs() {
        let feature = feature(&[("spec.md", CURRENT_SPEC), ("plan.md", CURRENT_PLAN)]);
        let written = generated(&feature);
        let headings: Vec<&str> = written
            .lines()
            .filter(|line| line.starts_with("## "))
            .collect();
        assert_eq!(
            headings,
            vec![
                "## Format: `[ID] [P?] [Story] Description`",
                "## Phase 1: Setup (Shared Infrastructure)",
                "## Phase 2: Foundational (Blocking Prerequisites)",
                "## Phase 3: User Story 1 - Review due cards (Priority: P1)",
                "## Phase 4: User Story 2 - Add a card (Priority: P2)",
                "## Phase 5: Polish & Cross-Cutting Concerns",
                "## Dependencies & Execution Order",
            ],
            "{written}"
        );
        let list = TaskList::parse(&written);
        let lines = written
            .lines()
            .filter(|line| line.starts_with("- [ ] T"))
            .count();
        assert_eq!(list.tasks.len(), lines, "{:?}", list.notes);
        assert!(list.notes.is_empty(), "{:?}", list.notes);
        let ids: Vec<&str> = list.tasks.iter().map(|task| task.id.as_str()).collect();
        let expected: Vec<String> = (1..=ids.len()).map(|n| format!("T{n:03}")).collect();
        assert_eq!(ids, expected);
        // Every requirement and criterion has a task naming it, in its story's phase.
        for id in ["FR-001", "FR-002", "FR-003", "FR-004", "SC-001"] {
            assert!(
                list.tasks
                    .iter()
                    .any(|task| task.requirements.contains(&id.to_owned())),
                "{id}"
            );
        }
        let fr003 = list
            .tasks
            .iter()
            .find(|task| task.description.contains("FR-003"))
            .expect("FR-003");
        assert_eq!(fr003.story.as_deref(), Some("US2"));
        // Paths are the plan's, else the task asks.
        for task in &list.tasks {
            let known = ["src/", "tests/", "src/cards/", "src/review/"];
            assert!(
                task.paths
                    .iter()
                    .all(|path| known.contains(&path.trim_end_matches(':'))
                        || path.starts_with("spec.md")
                        || path.starts_with("plan.md")),
                "{}: {:?}",
                task.description,
                task.paths
            );
        }
        assert!(
            written.contains("Create the Card entity in src/cards/: front, back"),
            "{written}"
        );
        assert!(
            written.contains("Create the Deck entity in NEEDS CLARIFICATION"),
            "{written}"
        );
        assert!(
            written.contains("**Independent Test**: NEEDS CLARIFICATION"),
            "{written}"
        );
        for invented in ["docs/", "services/", "models/", "in CI", "person-day"] {
            assert!(!written.contains(invented), "{invented} in {written}");
        }
    }

    #[test]
    fn an_existing_tasks_md_is_kept_and_extended_only_with_what_no_task_covers() {
        let feature = feature(&[("spec.md", OLDER_SPEC), ("existing/tasks.md", OLDER_TASKS)]);
        let list = feature.tasks.clone().expect("tasks.md read");
        let written = extended(&feature, &list, OLDER_TASKS);
        assert!(written.starts_with(OLDER_TASKS.trim_end()), "{written}");
        let added = &written[OLDER_TASKS.trim_end().len()..];
        assert!(added.contains(&format!("## Phase 3: {ADDED}")), "{added}");
        let tasks = TaskList::parse(added);
        assert_eq!(tasks.tasks.len(), 1, "{added}");
        assert_eq!(tasks.tasks[0].id, "T006");
        assert_eq!(tasks.tasks[0].requirements, vec!["FR-005"]);
        // Every requirement covered: nothing to write.
        let covered = feature_with_tasks(JAPANESE_SPEC, JAPANESE_TASKS);
        let list = covered.tasks.clone().expect("tasks.md read");
        assert_eq!(extended(&covered, &list, JAPANESE_TASKS), SKIP);
    }

    #[test]
    fn a_spec_without_stories_or_ids_gets_its_derived_requirements_in_phase_order() {
        let spec = include_str!("../../../../stagegate/tests/fixtures/specs/free-form/spec.md");
        let plan = "# Plan\n\n## Project Structure\n\n### Documentation (this feature)\n\n```text\nspecs/[###-feature]/\n├── plan.md\n└── tasks.md\n```\n\n### Source Code\n\nNEEDS CLARIFICATION\n";
        let written = generated(&feature(&[("spec.md", spec), ("plan.md", plan)]));
        let phases: Vec<&str> = written
            .lines()
            .filter(|line| line.starts_with("## Phase"))
            .collect();
        assert_eq!(
            phases,
            vec![
                "## Phase 1: Setup (Shared Infrastructure)",
                "## Phase 2: Foundational (Blocking Prerequisites)",
                "## Phase 3: Polish & Cross-Cutting Concerns",
            ],
            "{written}"
        );
        assert!(
            written.contains("Create the project structure: NEEDS CLARIFICATION"),
            "{written}"
        );
        assert!(
            written.contains("- [ ] T005 Implement DR-004 in NEEDS CLARIFICATION")
                && written.contains("(derived from spec.md:13)"),
            "{written}"
        );
    }

    #[test]
    fn a_story_with_nothing_to_do_yet_still_gets_its_phase() {
        let written = generated(&feature(&[(
            "spec.md",
            "# Feature Specification: X\n\n## User Scenarios & Testing\n\n### User Story 1 - Export (Priority: P1)\n\nA clerk exports orders.\n",
        )]));
        assert!(
            written.contains("## Phase 3: User Story 1 - Export (Priority: P1)")
                && written.contains("- [ ] T002 [US1] Implement US1 — NEEDS CLARIFICATION"),
            "{written}"
        );
    }

    fn feature_with_tasks(spec: &str, tasks: &str) -> Feature {
        feature(&[("spec.md", spec), ("existing/tasks.md", tasks)])
    }
}
