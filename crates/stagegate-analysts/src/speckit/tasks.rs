//! `tasks.md`: spec-kit's task list — `- [ ] T001 [P] [US1] description (path)` items grouped
//! in `## Phase N: …` sections, checked or not.

use crate::markdown::{self, BlockKind};
use crate::speckit::spec::looks_binary;
use crate::text;

/// A parsed task list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskList {
    pub tasks: Vec<Task>,
    /// How many tasks the file holds, and how many of them are checked: counted before any
    /// bound on what is analyzed, so that a report's counts are the file's.
    pub total: usize,
    pub checked: usize,
    pub phases: Vec<TaskPhase>,
    pub notes: Vec<String>,
}

/// One task.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Task {
    /// `T001`.
    pub id: String,
    pub done: bool,
    /// `[P]`: can run in parallel.
    pub parallel: bool,
    /// `[US1]` → `US1`.
    pub story: Option<String>,
    /// The text after the markers.
    pub description: String,
    /// File paths named in the description.
    pub paths: Vec<String>,
    /// `FR-###` / `SC-###` ids named in the description.
    pub requirements: Vec<String>,
    /// Other task ids named in the description (`depends on T006`).
    pub depends_on: Vec<String>,
    /// Index into [`TaskList::phases`].
    pub phase: Option<usize>,
    pub line: usize,
}

/// A `## Phase N: Title` section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskPhase {
    pub title: String,
    pub line: usize,
}

impl TaskList {
    /// Reads a task list; never fails (see [`TaskList::notes`]).
    pub fn parse(source: &str) -> TaskList {
        let mut list = TaskList::default();
        if source.trim().is_empty() {
            list.notes.push("tasks.md is empty".to_owned());
            return list;
        }
        if looks_binary(source) {
            list.notes
                .push("tasks.md does not look like text; nothing was read".to_owned());
            return list;
        }
        let document = markdown::parse(source);
        let mut seen = std::collections::HashMap::new();
        for block in &document.blocks {
            match block.kind {
                BlockKind::Heading { level } if level == 2 || level == 3 => {
                    let title = markdown::plain(&block.text);
                    if title.to_lowercase().starts_with("phase") || level == 2 {
                        list.phases.push(TaskPhase {
                            title,
                            line: block.line,
                        });
                    }
                }
                BlockKind::Item { checkbox } => {
                    let Some(task) = task(&block.text, checkbox, block.line) else {
                        continue;
                    };
                    if let Some(first) = seen.insert(task.id.clone(), task.line) {
                        list.notes.push(format!(
                            "{} is used twice (lines {first} and {})",
                            task.id, task.line
                        ));
                    }
                    let phase = list.phases.len().checked_sub(1);
                    list.tasks.push(Task { phase, ..task });
                }
                _ => {}
            }
        }
        if list.tasks.is_empty() {
            list.notes
                .push("no tasks (`- [ ] T001 description`) were found".to_owned());
        }
        list.total = list.tasks.len();
        list.checked = list.tasks.iter().filter(|task| task.done).count();
        list
    }

    /// Whether every task is checked (and there is at least one).
    pub fn all_done(&self) -> bool {
        !self.tasks.is_empty() && self.tasks.iter().all(|task| task.done)
    }

    /// The title of a task's phase.
    pub fn phase_title(&self, task: &Task) -> Option<&str> {
        task.phase
            .and_then(|index| self.phases.get(index))
            .map(|phase| phase.title.as_str())
    }
}

/// Reads one item as a task: `T001 [P] [US1] description`. Items without a task id are not
/// tasks (the format legend, notes).
fn task(raw: &str, checkbox: Option<bool>, line: usize) -> Option<Task> {
    let plain = markdown::plain(raw);
    let id = text::leading_id(&plain, "T")?;
    let mut rest = plain[plain.find(&id).map_or(0, |at| at + id.len())..].trim_start();
    let mut parallel = false;
    let mut story = None;
    while let Some(inner_end) = rest.strip_prefix('[').and_then(|inner| inner.find(']')) {
        let marker = rest[1..=inner_end].trim();
        if marker.eq_ignore_ascii_case("p") {
            parallel = true;
        } else if marker.to_uppercase().starts_with("US") {
            story = Some(marker.to_uppercase());
        } else {
            break;
        }
        rest = rest[inner_end + 2..].trim_start();
    }
    let description = rest.to_owned();
    let requirements = text::requirement_ids(&description);
    let depends_on = text::ids(&description, "T")
        .into_iter()
        .filter(|other| other != &id)
        .collect();
    Some(Task {
        paths: paths(&description),
        requirements,
        depends_on,
        description,
        id,
        done: checkbox.unwrap_or(false),
        parallel,
        story,
        phase: None,
        line,
    })
}

/// Words that look like file paths: they hold a `/`, or end in a short file extension.
pub(crate) fn paths(description: &str) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    for word in description.split_whitespace() {
        let word =
            word.trim_matches(|c: char| matches!(c, '(' | ')' | ',' | ';' | '`' | '"' | '\''));
        let word = word.trim_end_matches('.');
        let has_slash = word.contains('/') && word.chars().any(char::is_alphanumeric);
        let extension = word
            .rsplit_once('.')
            .map(|(stem, extension)| {
                !stem.is_empty()
                    && (1..=5).contains(&extension.len())
                    && extension.chars().all(|c| c.is_ascii_alphanumeric())
                    && extension.chars().any(|c| c.is_ascii_alphabetic())
            })
            .unwrap_or(false);
        let is_url = word.contains("://");
        let is_route = word.starts_with('/') && !word[1..].contains('.');
        if (has_slash || extension) && !is_url && !is_route && !found.iter().any(|p| p == word) {
            found.push(word.to_owned());
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../../../examples/specs/001-team-photo-albums/tasks.md");

    #[test]
    fn reads_the_example_tasks() {
        let list = TaskList::parse(EXAMPLE);
        assert_eq!(list.tasks.len(), 16);
        let t009 = &list.tasks[8];
        assert_eq!(t009.id, "T009");
        assert!(!t009.done && !t009.parallel);
        assert_eq!(t009.story.as_deref(), Some("US1"));
        assert_eq!(t009.paths, vec!["backend/src/services/upload_service.ts"]);
        assert_eq!(t009.depends_on, vec!["T006", "T008"]);
        let t007 = &list.tasks[6];
        assert!(t007.done && t007.parallel);
        assert_eq!(list.tasks[13].requirements, vec!["FR-008"]);
        assert_eq!(
            list.phase_title(&list.tasks[0]),
            Some("Phase 1: Setup (Shared Infrastructure)")
        );
        assert!(!list.all_done());
        assert!(list.notes.is_empty(), "{:?}", list.notes);
    }

    #[test]
    fn the_counts_are_the_files_tasks_whatever_their_list_markers() {
        let list = TaskList::parse(
            "# Tasks\n\n<!--\n  Example:\n- [ ] T900 Sample task from the template\n-->\n\n- [x] T001 Done\n* [X] T002 Done too\n1. [ ] T003 Open\n  - [x] T004 Nested and done\n\n```text\n- [ ] T901 In a code block\n```\n<!-- - [ ] T902 one-line comment -->\n",
        );
        let ids: Vec<&str> = list.tasks.iter().map(|task| task.id.as_str()).collect();
        assert_eq!(ids, vec!["T001", "T002", "T003", "T004"]);
        assert_eq!((list.checked, list.total), (3, 4));
    }

    #[test]
    fn odd_task_lists() {
        let list = TaskList::parse("- [X] T1 [p] [us2] do it\r\n- [ ] T1 again\r\n- note\r\n");
        assert_eq!(list.tasks.len(), 2);
        assert!(list.tasks[0].done && list.tasks[0].parallel);
        assert_eq!(list.tasks[0].story.as_deref(), Some("US2"));
        assert!(list.notes[0].contains("T1 is used twice"));
        assert!(TaskList::parse("").notes[0].contains("empty"));
        assert!(TaskList::parse("prose only").notes[0].contains("no tasks"));
    }
}
