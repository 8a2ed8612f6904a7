//! The feature's tasks in spec-kit's form, shared by `tasks.md` and `implementation_plan.md`:
//! tasks.md's own tasks when it exists (with tasks added for the requirements none of them
//! covers), else a breakdown traced to the inputs — Setup from plan.md's Project Structure and
//! Technical Context, Foundational from the spec's Key Entities, one phase per user story in
//! priority order (its acceptance scenarios as tests, then its requirements), and Polish (the
//! requirements no story leads to, the success criteria).
//!
//! Nothing is invented: a file path is one plan.md's Project Structure (or tasks.md) names,
//! chosen by the words of the entity, story or requirement; where none fits, the task says
//! `NEEDS CLARIFICATION` rather than guess a layout.

use crate::analysts::architecture;
use crate::analysts::core_implementation::{self, LayoutOrigin};
use crate::analysts::technical_context::technical_context;
use crate::analysts::traceability;
use crate::speckit::{Feature, Requirement, Spec, UserStory};
use crate::text;

pub(crate) const SETUP: &str = "Phase 1: Setup (Shared Infrastructure)";
pub(crate) const FOUNDATIONAL: &str = "Phase 2: Foundational (Blocking Prerequisites)";
pub(crate) const POLISH: &str = "Polish & Cross-Cutting Concerns";
/// The phase of tasks added to an existing tasks.md.
pub(crate) const ADDED: &str = "Requirements no task covered (added by stagegate)";

/// What a task's path says when the plan names none that fits.
const NO_PATH: &str = "NEEDS CLARIFICATION: which file (plan.md's Project Structure names none)";

/// A task line in the making.
pub(crate) struct PlannedTask {
    pub(crate) phase: String,
    pub(crate) done: bool,
    pub(crate) parallel: bool,
    pub(crate) story: Option<String>,
    pub(crate) description: String,
    /// The requirement and success-criterion ids it implements or verifies.
    pub(crate) requirements: Vec<String>,
    /// The one file or directory it touches, when known (decides `[P]`).
    pub(crate) path: Option<String>,
    /// `T012`: the team's id for a task of tasks.md, else given in order by [`number`].
    pub(crate) id: String,
}

impl PlannedTask {
    fn new(phase: &str, story: Option<&UserStory>, description: String) -> PlannedTask {
        PlannedTask {
            phase: phase.to_owned(),
            done: false,
            parallel: false,
            story: story.map(UserStory::label),
            description,
            requirements: Vec::new(),
            path: None,
            id: String::new(),
        }
    }

    /// `<head> in <path>: <detail> (<source>)`, the path first as spec-kit's tasks have it.
    fn located(
        phase: &str,
        story: Option<&UserStory>,
        head: String,
        path: Option<String>,
        (detail, source): (&str, String),
    ) -> PlannedTask {
        let description = format!(
            "{head} in {}: {} ({source})",
            path.as_deref().unwrap_or(NO_PATH),
            text::truncate(detail.trim(), 160)
        );
        PlannedTask {
            path,
            ..PlannedTask::new(phase, story, description)
        }
    }

    /// The task that implements (or, for a success criterion, verifies) a requirement.
    fn for_requirement(
        phase: &str,
        story: Option<&UserStory>,
        requirement: &Requirement,
        path: Option<String>,
    ) -> PlannedTask {
        let verb = if requirement.is_functional() {
            "Implement"
        } else {
            "Verify"
        };
        let mut task = PlannedTask::located(
            phase,
            story,
            format!("{verb} {}", requirement.id),
            path,
            (&requirement.text, requirement.source()),
        );
        task.requirements.push(requirement.id.clone());
        task
    }

    /// `- [ ] T001 [P] [US1] description`, naming the requirements the description does not.
    pub(crate) fn line(&self) -> String {
        let mut line = format!("- [{}] {}", if self.done { "x" } else { " " }, self.id);
        if self.parallel {
            line.push_str(" [P]");
        }
        if let Some(story) = &self.story {
            line.push_str(&format!(" [{story}]"));
        }
        line.push(' ');
        line.push_str(&self.description);
        let missing: Vec<&str> = self
            .requirements
            .iter()
            .filter(|id| !self.description.contains(id.as_str()))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            line.push_str(&format!(" — covers {}", missing.join(", ")));
        }
        line
    }
}

/// The tasks under a `heading` (`##`) per phase, each phase opened by `header(first task)`.
pub(crate) fn render(
    tasks: &[PlannedTask],
    heading: &str,
    header: impl Fn(&PlannedTask) -> String,
) -> String {
    let mut out = String::new();
    for (index, task) in tasks.iter().enumerate() {
        let previous = index.checked_sub(1).map(|at| tasks[at].phase.as_str());
        if previous != Some(task.phase.as_str()) {
            out.push_str(&format!("{heading} {}\n\n", task.phase));
            out.push_str(&header(task));
        }
        out.push_str(&task.line());
        out.push('\n');
        if tasks.get(index + 1).map(|next| next.phase.as_str()) != Some(task.phase.as_str()) {
            out.push('\n');
        }
    }
    out
}

/// The stories in priority order (then by number), as spec-kit orders their phases.
pub(crate) fn stories_by_priority(spec: &Spec) -> Vec<&UserStory> {
    let mut stories: Vec<&UserStory> = spec.stories.iter().collect();
    stories.sort_by_key(|story| (story.priority.unwrap_or(u32::MAX), story.number));
    stories
}

/// The title of a story's phase (`Phase 3: User Story 1 - Title (Priority: P1)`).
pub(crate) fn story_phase(position: usize, story: &UserStory) -> String {
    format!(
        "Phase {}: User Story {} - {} (Priority: {})",
        3 + position,
        story.number,
        story.title,
        story
            .priority
            .map_or("NEEDS CLARIFICATION".to_owned(), |p| format!("P{p}"))
    )
}

/// The Polish phase's title, numbered after the story phases.
pub(crate) fn polish_phase(spec: &Spec) -> String {
    format!("Phase {}: {POLISH}", 3 + spec.stories.len())
}

/// The layout tasks may name: plan.md's Project Structure, else tasks.md's paths; never one
/// the analysts derived themselves.
fn known_paths(feature: &Feature) -> Vec<String> {
    match core_implementation::layout(feature) {
        (paths, LayoutOrigin::Plan | LayoutOrigin::Tasks) => paths,
        (_, LayoutOrigin::Derived) => Vec::new(),
    }
}

/// The deepest known path with a component named like one of `terms` (`cards/` for "Card"),
/// trying the terms in order.
fn path_for(paths: &[String], terms: &[String]) -> Option<String> {
    terms.iter().find_map(|term| {
        let key = text::name_key(term);
        if key.chars().count() < 3 {
            return None;
        }
        paths
            .iter()
            .filter(|path| {
                path.split('/')
                    .any(|component| text::name_key(component) == key)
            })
            .max_by_key(|path| (path.matches('/').count(), std::cmp::Reverse(path.len())))
            .cloned()
    })
}

/// The known test directory for acceptance tests: one named for integration or end-to-end
/// tests, else the shallowest test directory.
fn tests_path(paths: &[String]) -> Option<String> {
    let is_test = |component: &str| {
        matches!(
            text::name_key(component).as_str(),
            "test" | "spec" | "e2e" | "integration" | "acceptance"
        )
    };
    let tests: Vec<&String> = paths
        .iter()
        .filter(|path| path.split('/').any(is_test))
        .collect();
    tests
        .iter()
        .find(|path| {
            path.split('/').any(|component| {
                matches!(
                    text::name_key(component).as_str(),
                    "integration" | "e2e" | "acceptance"
                )
            })
        })
        .or_else(|| tests.iter().min_by_key(|path| path.matches('/').count()))
        .map(|path| (*path).clone())
}

/// The words a title or text is named by, in order (for [`path_for`]).
fn terms(texts: &[&str]) -> Vec<String> {
    texts
        .iter()
        .flat_map(|text| text::words(text).collect::<Vec<_>>())
        .collect()
}

/// The tasks of the feature: tasks.md's (extended) when it has any, else generated.
pub(crate) fn tasks(feature: &Feature) -> Vec<PlannedTask> {
    if feature
        .tasks
        .as_ref()
        .is_some_and(|list| !list.tasks.is_empty())
    {
        let mut tasks = from_task_list(feature);
        tasks.extend(uncovered(feature));
        number(&mut tasks);
        tasks
    } else {
        let mut tasks = generated(feature);
        number(&mut tasks);
        tasks
    }
}

/// Gives the tasks without an id the next ones after the highest in use (`T001` on).
pub(crate) fn number(tasks: &mut [PlannedTask]) {
    let mut last = tasks
        .iter()
        .filter_map(|task| task.id.strip_prefix('T')?.parse::<usize>().ok())
        .max()
        .unwrap_or(0);
    for task in tasks.iter_mut().filter(|task| task.id.is_empty()) {
        last += 1;
        task.id = format!("T{last:03}");
    }
}

/// A breakdown traced to spec.md and plan.md (see the module documentation), not numbered.
fn generated(feature: &Feature) -> Vec<PlannedTask> {
    let spec = &feature.spec;
    let paths = known_paths(feature);
    let mut tasks = setup(feature, &paths);
    for model in architecture::entity_models(spec) {
        let path = path_for(&paths, &terms(&[&model.name]));
        tasks.push(PlannedTask::located(
            FOUNDATIONAL,
            None,
            format!("Create the {} entity", model.name),
            path,
            (
                &model.fields_or_question(),
                format!("spec.md:{}", model.line),
            ),
        ));
    }
    let traces = traceability::trace(spec);
    let tests = tests_path(&paths);
    let mut placed: Vec<&str> = Vec::new();
    for (position, story) in stories_by_priority(spec).into_iter().enumerate() {
        let phase = story_phase(position, story);
        let before = tasks.len();
        for (index, scenario) in story.scenarios.iter().enumerate() {
            tasks.push(PlannedTask::located(
                &phase,
                Some(story),
                format!(
                    "Write the acceptance test {}-AS{}",
                    story.label(),
                    index + 1
                ),
                tests.clone(),
                (&scenario.text, format!("spec.md:{}", scenario.line)),
            ));
        }
        for trace in traces.iter().filter(|trace| {
            trace.requirement.is_functional()
                && trace
                    .stories
                    .first()
                    .is_some_and(|first| first.number == story.number)
        }) {
            let requirement = trace.requirement;
            let path = path_for(&paths, &terms(&[&requirement.text, &story.title]));
            tasks.push(PlannedTask::for_requirement(
                &phase,
                Some(story),
                requirement,
                path,
            ));
            placed.push(&requirement.id);
        }
        // A story no scenario or requirement details still gets its phase, saying so.
        if tasks.len() == before {
            let path = path_for(&paths, &terms(&[&story.title]));
            let what = if story.narrative.trim().is_empty() {
                story.title.as_str()
            } else {
                story.narrative.as_str()
            };
            tasks.push(PlannedTask::located(
                &phase,
                Some(story),
                format!("Implement {} — NEEDS CLARIFICATION: spec.md gives it no acceptance scenario or requirement", story.label()),
                path,
                (what, format!("spec.md:{}", story.line)),
            ));
        }
    }
    let polish = polish_phase(spec);
    for requirement in spec
        .requirements
        .iter()
        .filter(|requirement| !placed.contains(&requirement.id.as_str()))
    {
        let path = path_for(&paths, &terms(&[&requirement.text]));
        tasks.push(PlannedTask::for_requirement(
            &polish,
            None,
            requirement,
            path,
        ));
    }
    for criterion in &spec.success_criteria {
        tasks.push(PlannedTask::for_requirement(
            &polish,
            None,
            criterion,
            tests.clone(),
        ));
    }
    mark_parallel(&mut tasks);
    tasks
}

/// Setup: the structure plan.md names, and the dependencies and test tools its Technical
/// Context states (with where they were read).
fn setup(feature: &Feature, paths: &[String]) -> Vec<PlannedTask> {
    let structure = if paths.is_empty() {
        "Create the project structure: NEEDS CLARIFICATION (plan.md's Project Structure names no paths)".to_owned()
    } else {
        let named: Vec<String> = paths
            .iter()
            .take(20)
            .map(|path| format!("`{path}`"))
            .collect();
        format!(
            "Create the directories of plan.md's Project Structure: {}{}",
            named.join(", "),
            if paths.len() > named.len() {
                ", …"
            } else {
                ""
            }
        )
    };
    let mut tasks = vec![PlannedTask::new(SETUP, None, structure)];
    for line in technical_context(feature) {
        let Some(source) = &line.source else {
            continue;
        };
        let what = match line.key {
            "Primary Dependencies" => "Add the dependencies",
            "Testing" => "Set up the test tooling",
            _ => continue,
        };
        tasks.push(PlannedTask::new(
            SETUP,
            None,
            format!("{what}: {} (from {source})", line.value),
        ));
    }
    tasks
}

/// `[P]` for a task whose file no other task of its phase touches; a task without a known
/// file is never marked.
fn mark_parallel(tasks: &mut [PlannedTask]) {
    for index in 0..tasks.len() {
        let Some(path) = tasks[index].path.clone() else {
            continue;
        };
        let shared = tasks.iter().enumerate().any(|(other, task)| {
            other != index && task.phase == tasks[index].phase && task.path.as_ref() == Some(&path)
        });
        tasks[index].parallel = !shared;
    }
}

/// tasks.md's tasks as the team wrote them, with the requirements each one covers.
fn from_task_list(feature: &Feature) -> Vec<PlannedTask> {
    let Some(list) = &feature.tasks else {
        return Vec::new();
    };
    let coverage = traceability::coverage(&feature.spec, &list.tasks);
    list.tasks
        .iter()
        .map(|task| {
            let mut requirements: Vec<String> = coverage
                .rows
                .iter()
                .filter(|row| row.tasks.contains(&task.id))
                .map(|row| row.id.clone())
                .collect();
            for id in &task.requirements {
                if !requirements.contains(id) {
                    requirements.push(id.clone());
                }
            }
            PlannedTask {
                phase: list.phase_title(task).unwrap_or("Tasks").to_owned(),
                done: task.done,
                parallel: task.parallel,
                story: task.story.clone(),
                description: task.description.clone(),
                requirements,
                path: task.paths.first().cloned(),
                id: task.id.clone(),
            }
        })
        .collect()
}

/// A task for each requirement and success criterion no task of tasks.md covers.
pub(crate) fn uncovered(feature: &Feature) -> Vec<PlannedTask> {
    let Some(list) = &feature.tasks else {
        return Vec::new();
    };
    let spec = &feature.spec;
    let paths = known_paths(feature);
    let traces = traceability::trace(spec);
    let coverage = traceability::coverage(spec, &list.tasks);
    coverage
        .rows
        .iter()
        .zip(&traces)
        .filter(|(row, _)| row.tasks.is_empty())
        .map(|(_, trace)| {
            let requirement = trace.requirement;
            let story = trace.stories.first().copied();
            let path = path_for(
                &paths,
                &terms(&[&requirement.text, story.map_or("", |story| &story.title)]),
            );
            PlannedTask::for_requirement(ADDED, story, requirement, path)
        })
        .collect()
}

/// The order the tasks run in: spec-kit's phase order, the stories' independence, the
/// dependencies tasks.md states, the groups of `[P]` tasks, and the tasks that wait on an
/// open question.
pub(crate) fn dependencies(feature: &Feature, tasks: &[PlannedTask]) -> Vec<String> {
    let spec = &feature.spec;
    let mut lines = vec![
        "Setup → Foundational → the user stories in priority order → Polish; Foundational blocks every story (spec-kit's phase order).".to_owned(),
        "Within a story, its acceptance tests come first and fail before its implementation tasks.".to_owned(),
    ];
    if let Some(first) = stories_by_priority(spec).first() {
        lines.push(format!(
            "{} (\"{}\") is the MVP: stop and validate it on its own before the next story; the stories after it depend only on the foundation.",
            first.label(),
            first.title
        ));
    }
    if let Some(list) = &feature.tasks {
        for task in list.tasks.iter().filter(|task| !task.depends_on.is_empty()) {
            lines.push(format!(
                "{} depends on {} (tasks.md:{})",
                task.id,
                task.depends_on.join(", "),
                task.line
            ));
        }
    }
    let mut phases: Vec<&str> = tasks.iter().map(|task| task.phase.as_str()).collect();
    phases.dedup();
    for phase in phases {
        let parallel: Vec<&str> = tasks
            .iter()
            .filter(|task| task.phase == phase && task.parallel && !task.done)
            .map(|task| task.id.as_str())
            .collect();
        if parallel.len() > 1 {
            lines.push(format!(
                "Can run together ([P], different files): {}",
                parallel.join(", ")
            ));
        }
    }
    for question in &spec.open_questions {
        let Some(id) = &question.requirement else {
            continue;
        };
        let waiting: Vec<&str> = tasks
            .iter()
            .filter(|task| task.requirements.contains(id))
            .map(|task| task.id.as_str())
            .collect();
        if !waiting.is_empty() {
            lines.push(format!(
                "{} wait(s) on {id}'s open question (spec.md:{}): {}",
                waiting.join(", "),
                question.line,
                text::truncate(&question.question, 100)
            ));
        }
    }
    lines
}
