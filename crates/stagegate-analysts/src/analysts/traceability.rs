//! Traceability: which stories and acceptance scenarios a requirement speaks about, and which
//! tasks implement it.
//!
//! By ids and structure first, in any language: a requirement that cites a story (`US2`,
//! `User Story 2`, `ユーザーストーリー2`) or that a story cites by id belongs to it, and with a
//! single story every requirement is that story's. Otherwise, by key words: a requirement belongs to a story when they share at least two key words that are not
//! common to every story (one, when the requirement has at most three key words), keeping the
//! stories with at least half the best overlap. A task implements a requirement when it names
//! the id, or does its work: see [`coverage`].
//! Matching by words is crude but deterministic and explainable: each match lists the words.

use std::collections::{BTreeSet, HashMap};

use crate::speckit::{Requirement, Spec, Task, UserStory};
use crate::text;

/// A requirement and what it was traced to.
pub(crate) struct Trace<'a> {
    pub(crate) requirement: &'a Requirement,
    /// `(story, overlap)`, best first.
    pub(crate) stories: Vec<&'a UserStory>,
    /// `US1-AS2` labels of matching scenarios.
    pub(crate) scenarios: Vec<String>,
    /// The words that made the match.
    pub(crate) words: Vec<String>,
}

/// Requirements above this count are matched against stories by id order only for the first
/// ones; keeps megabyte specs linear-ish.
const TRACE_LIMIT: usize = 2_000;

fn story_keywords(story: &UserStory) -> BTreeSet<String> {
    let mut words = text::keywords(&story.title);
    words.extend(text::keywords(&story.narrative));
    for scenario in &story.scenarios {
        words.extend(text::keywords(&scenario.text));
    }
    words
}

/// The requirement ids each story cites in its narrative or scenarios, computed once.
fn cited_ids(spec: &Spec) -> Vec<BTreeSet<String>> {
    spec.stories
        .iter()
        .map(|story| {
            let mut ids: BTreeSet<String> = text::requirement_ids(&story.narrative)
                .into_iter()
                .collect();
            for scenario in &story.scenarios {
                ids.extend(text::requirement_ids(&scenario.text));
            }
            ids
        })
        .collect()
}

/// The story numbers a requirement's text cites (`US2`, `User Story 2`, `ユーザーストーリー2`).
fn cited_stories(requirement: &Requirement) -> BTreeSet<usize> {
    let compact: String = requirement.text.split_whitespace().collect();
    let lower = compact.to_lowercase();
    let mut numbers = BTreeSet::new();
    for label in ["userstory", "ユーザーストーリー", "story", "us-", "us"] {
        for (at, _) in lower.match_indices(label) {
            let before = lower[..at].chars().next_back();
            if label.starts_with("us") && before.is_some_and(|c| c.is_alphabetic()) {
                continue;
            }
            let digits: String = lower[at + label.len()..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            if let Ok(number) = digits.parse() {
                numbers.insert(number);
            }
        }
    }
    numbers
}

/// The stories a requirement is linked to by id or structure (see the module's rule).
fn linked_stories<'a>(
    spec: &'a Spec,
    cited: &[BTreeSet<String>],
    requirement: &Requirement,
) -> Vec<&'a UserStory> {
    let numbers = cited_stories(requirement);
    let linked: Vec<&UserStory> = spec
        .stories
        .iter()
        .zip(cited)
        .filter(|(story, ids)| numbers.contains(&story.number) || ids.contains(&requirement.id))
        .map(|(story, _)| story)
        .collect();
    if linked.is_empty() && spec.stories.len() == 1 {
        return vec![&spec.stories[0]];
    }
    linked
}

/// Traces every requirement (FR then SC) to stories and scenarios.
pub(crate) fn trace(spec: &Spec) -> Vec<Trace<'_>> {
    let story_words: Vec<BTreeSet<String>> = spec.stories.iter().map(story_keywords).collect();
    let cited = cited_ids(spec);
    // Words every story shares say nothing about which story a requirement belongs to.
    let common: BTreeSet<String> = if story_words.len() >= 2 {
        story_words
            .iter()
            .skip(1)
            .fold(story_words[0].clone(), |shared, words| {
                shared.intersection(words).cloned().collect()
            })
    } else {
        BTreeSet::new()
    };
    let scenario_words: Vec<Vec<BTreeSet<String>>> = spec
        .stories
        .iter()
        .map(|story| {
            story
                .scenarios
                .iter()
                .map(|scenario| text::keywords(&scenario.text))
                .collect()
        })
        .collect();
    spec.requirements
        .iter()
        .chain(&spec.success_criteria)
        .enumerate()
        .map(|(index, requirement)| {
            if index >= TRACE_LIMIT {
                return Trace {
                    requirement,
                    stories: Vec::new(),
                    scenarios: Vec::new(),
                    words: Vec::new(),
                };
            }
            let linked = linked_stories(spec, &cited, requirement);
            if !linked.is_empty() {
                return Trace {
                    requirement,
                    scenarios: linked
                        .iter()
                        .flat_map(|story| {
                            story
                                .scenarios
                                .iter()
                                .enumerate()
                                .filter(|(_, scenario)| scenario.text.contains(&requirement.id))
                                .map(|(number, _)| format!("{}-AS{}", story.label(), number + 1))
                        })
                        .collect(),
                    stories: linked,
                    words: Vec::new(),
                };
            }
            let words: BTreeSet<String> = text::keywords(&requirement.text)
                .into_iter()
                .filter(|word| !common.contains(word))
                .collect();
            let needed = if words.len() <= 3 { 1 } else { 2 };
            let mut overlaps: Vec<(usize, usize)> = story_words
                .iter()
                .enumerate()
                .map(|(story, story_words)| (story, words.intersection(story_words).count()))
                .filter(|(_, overlap)| *overlap >= needed)
                .collect();
            overlaps.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            let best = overlaps.first().map_or(0, |(_, overlap)| *overlap);
            overlaps.retain(|(_, overlap)| overlap * 2 >= best);
            overlaps.truncate(3);
            let mut matched_words = BTreeSet::new();
            let mut scenarios = Vec::new();
            for (story, _) in &overlaps {
                matched_words.extend(words.intersection(&story_words[*story]).cloned());
                for (number, scenario) in scenario_words[*story].iter().enumerate() {
                    if words.intersection(scenario).count() >= needed {
                        scenarios.push(format!(
                            "{}-AS{}",
                            spec.stories[*story].label(),
                            number + 1
                        ));
                    }
                }
            }
            Trace {
                requirement,
                stories: overlaps
                    .iter()
                    .map(|(story, _)| &spec.stories[*story])
                    .collect(),
                scenarios,
                words: matched_words.into_iter().collect(),
            }
        })
        .collect()
}

/// Which tasks implement each requirement, and which tasks implement none.
pub(crate) struct Coverage {
    /// Per requirement (FR then SC, spec order): the task ids and whether by id or by words.
    pub(crate) rows: Vec<CoverageRow>,
    /// Tasks matched to no requirement and labelled with no story.
    pub(crate) unmapped: Vec<usize>,
}

pub(crate) struct CoverageRow {
    pub(crate) id: String,
    pub(crate) summary: String,
    pub(crate) tasks: Vec<String>,
    pub(crate) by_id: bool,
    /// The terms the matched tasks share with the requirement (empty when matched by id).
    pub(crate) terms: Vec<String>,
}

impl Coverage {
    /// Share of requirements with at least one task, in percent (100 when there are none).
    pub(crate) fn percent(&self) -> f64 {
        if self.rows.is_empty() {
            return 100.0;
        }
        let covered = self.rows.iter().filter(|row| !row.tasks.is_empty()).count();
        covered as f64 * 100.0 / self.rows.len() as f64
    }

    /// Whether the requirement with this id has a task.
    pub(crate) fn covers(&self, id: &str) -> bool {
        self.rows
            .iter()
            .any(|row| row.id == id && !row.tasks.is_empty())
    }
}

/// Whether a task does a requirement's work, judged by the terms they share (see
/// [`coverage`]): `shared` are all their common terms, `significant` those of them that few
/// requirements use.
fn does_the_work(shared: usize, significant: usize, same_story: bool, smaller_side: usize) -> bool {
    (same_story && significant >= 1)
        || significant >= 2
        || (significant >= 1 && shared * 2 >= smaller_side)
}

/// Matches requirements to tasks by what the tasks do. A task covers a requirement when it
/// names its id; else when they share terms (words, or character pairs of CJK text: see
/// [`text::keywords`]) that at most half of the requirements use — one such term is enough
/// for a task labelled with a story the requirement belongs to (`[US1]`), or when the shared
/// terms are half of the smaller side's; two otherwise. No word list of any language decides.
pub(crate) fn coverage(spec: &Spec, tasks: &[Task]) -> Coverage {
    let requirements: Vec<&Requirement> = spec
        .requirements
        .iter()
        .chain(&spec.success_criteria)
        .collect();
    let requirement_words: Vec<BTreeSet<String>> = requirements
        .iter()
        .map(|requirement| text::keywords(&requirement.text))
        .collect();
    // Document frequency: a term in more than half the requirements does not discriminate.
    let mut frequency: HashMap<&str, usize> = HashMap::new();
    for words in &requirement_words {
        for word in words {
            *frequency.entry(word.as_str()).or_default() += 1;
        }
    }
    let limit = (requirements.len() / 2).max(1);
    let significant =
        |word: &str| requirements.len() <= 2 || frequency.get(word).copied().unwrap_or(0) <= limit;
    let task_words: Vec<BTreeSet<String>> = tasks
        .iter()
        .map(|task| text::keywords(&task.description))
        .collect();
    // An index from term to the tasks holding it keeps this linear in the terms.
    let mut index: HashMap<&str, Vec<usize>> = HashMap::new();
    for (position, words) in task_words.iter().enumerate() {
        for word in words {
            let postings = index.entry(word.as_str()).or_default();
            if postings.len() < 1_000 {
                postings.push(position);
            }
        }
    }
    let mut by_requirement: HashMap<&str, Vec<usize>> = HashMap::new();
    for (position, task) in tasks.iter().enumerate() {
        for id in &task.requirements {
            by_requirement
                .entry(id.as_str())
                .or_default()
                .push(position);
        }
    }
    let traces = trace(spec);
    let mut task_used = vec![false; tasks.len()];
    let mut rows = Vec::with_capacity(requirements.len());
    for ((requirement, words), trace) in requirements.iter().zip(&requirement_words).zip(&traces) {
        let stories: Vec<String> = trace.stories.iter().map(|story| story.label()).collect();
        let mut matched: Vec<usize> = by_requirement
            .get(requirement.id.as_str())
            .cloned()
            .unwrap_or_default();
        let explicit = !matched.is_empty();
        let mut terms: BTreeSet<&str> = BTreeSet::new();
        if !explicit {
            let mut shared: HashMap<usize, Vec<&str>> = HashMap::new();
            for word in words {
                for task in index.get(word.as_str()).into_iter().flatten() {
                    shared.entry(*task).or_default().push(word);
                }
            }
            for (task, common) in shared {
                let distinctive: Vec<&str> = common
                    .iter()
                    .copied()
                    .filter(|word| significant(word))
                    .collect();
                let same_story = tasks[task]
                    .story
                    .as_ref()
                    .is_some_and(|label| stories.contains(label));
                let smaller_side = words.len().min(task_words[task].len());
                if does_the_work(common.len(), distinctive.len(), same_story, smaller_side) {
                    matched.push(task);
                    terms.extend(distinctive);
                }
            }
            matched.sort_unstable();
        }
        for task in &matched {
            task_used[*task] = true;
        }
        rows.push(CoverageRow {
            id: requirement.id.clone(),
            summary: text::summary(&requirement.text, 70),
            tasks: matched.iter().map(|task| tasks[*task].id.clone()).collect(),
            by_id: explicit,
            terms: terms.into_iter().take(6).map(str::to_owned).collect(),
        });
    }
    let unmapped = tasks
        .iter()
        .enumerate()
        .filter(|(position, task)| !task_used[*position] && task.story.is_none())
        .map(|(position, _)| position)
        .collect();
    Coverage { rows, unmapped }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::speckit::TaskList;

    const SPEC: &str = include_str!("../../../../examples/specs/001-team-photo-albums/spec.md");
    const TASKS: &str = include_str!("../../../../examples/specs/001-team-photo-albums/tasks.md");

    fn fixture_coverage(spec: &str, tasks: &str) -> Vec<(String, Vec<String>)> {
        let spec = Spec::parse(spec);
        let tasks = TaskList::parse(tasks);
        coverage(&spec, &tasks.tasks)
            .rows
            .into_iter()
            .map(|row| (row.id, row.tasks))
            .collect()
    }

    #[test]
    fn tasks_that_do_the_work_cover_requirements_they_do_not_quote() {
        let older = fixture_coverage(
            include_str!("../../../stagegate/tests/fixtures/specs/older-template/spec.md"),
            include_str!("../../../stagegate/tests/fixtures/specs/older-template/tasks.md"),
        );
        let tasks_of = |rows: &[(String, Vec<String>)], id: &str| {
            rows.iter()
                .find(|(row, _)| row == id)
                .map(|(_, tasks)| tasks.join(","))
                .unwrap_or_else(|| panic!("no row {id}"))
        };
        assert_eq!(tasks_of(&older, "FR-001"), "T003");
        assert_eq!(tasks_of(&older, "FR-002"), "T003");
        assert_eq!(tasks_of(&older, "FR-003"), "T004");
        assert_eq!(tasks_of(&older, "FR-004"), "T005");
        // The retention period is open: no task does it.
        assert_eq!(tasks_of(&older, "FR-005"), "");
        // Japanese: character pairs, not English words, match the tasks to the requirements.
        let japanese = fixture_coverage(
            include_str!("../../../stagegate/tests/fixtures/specs/japanese/spec.md"),
            include_str!("../../../stagegate/tests/fixtures/specs/japanese/tasks.md"),
        );
        assert_eq!(tasks_of(&japanese, "FR-001"), "T001");
        assert_eq!(tasks_of(&japanese, "FR-002"), "T002");
        assert_eq!(tasks_of(&japanese, "FR-003"), "T003");
        // A task sharing one common word with a requirement does not cover it.
        let unrelated = fixture_coverage(
            "## Requirements\n- **FR-001**: System MUST export invoices as PDF\n- **FR-002**: System MUST email invoices to customers\n- **FR-003**: System MUST archive paid invoices\n",
            "- [x] T001 Archive old log files in ops/archive.sh\n",
        );
        assert_eq!(tasks_of(&unrelated, "FR-001"), "");
        assert_eq!(tasks_of(&unrelated, "FR-002"), "");
    }

    #[test]
    fn requirements_meet_their_stories() {
        let spec = Spec::parse(SPEC);
        let traces = trace(&spec);
        assert_eq!(traces.len(), 16);
        let fr005 = &traces[4];
        assert_eq!(fr005.requirement.id, "FR-005");
        assert_eq!(fr005.stories[0].number, 2, "{:?}", fr005.words);
        let fr007 = &traces[6];
        assert_eq!(fr007.stories[0].number, 3, "{:?}", fr007.words);
    }

    #[test]
    fn tasks_cover_requirements_by_id_and_words() {
        let spec = Spec::parse(SPEC);
        let tasks = TaskList::parse(TASKS);
        let coverage = coverage(&spec, &tasks.tasks);
        let row = |id: &str| coverage.rows.iter().find(|row| row.id == id).expect(id);
        assert!(row("FR-008").by_id);
        assert!(row("FR-008").tasks.contains(&"T014".to_owned()));
        assert!(
            row("FR-010").tasks.contains(&"T015".to_owned()),
            "{:?}",
            row("FR-010").tasks
        );
        assert!(
            row("FR-011").tasks.contains(&"T012".to_owned()),
            "{:?}",
            row("FR-011").tasks
        );
        assert!(coverage.percent() > 50.0);
    }
}
