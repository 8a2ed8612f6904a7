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
    out.push_str(&task_breakdown::render(&tasks, "##", |task| {
        story_header(feature, task)
    }));
    if !tasks
        .iter()
        .any(|task| task.phase == task_breakdown::FOUNDATIONAL)
    {
        out.push_str(&format!(
            "## {}\n\nspec.md names no key entities: nothing is known to block the stories.\n\n",
            task_breakdown::FOUNDATIONAL
        ));
    }
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
