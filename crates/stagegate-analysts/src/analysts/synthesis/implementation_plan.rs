//! `implementation_plan.md`: Approach → Tasks → Dependencies. Tasks are in spec-kit's
//! `- [ ] T001 [P] [US1] description (path)` form: tasks.md's own tasks when it exists (with
//! tasks added for requirements nothing covers), else a task list generated from the plan's
//! layout, the entities, the acceptance scenarios and the traced requirements. Every
//! requirement id appears in a task or the traceability table.

use crate::analysts::core_implementation::{self, snake};
use crate::analysts::synthesis::sources;
use crate::analysts::{Call, architecture, integrations, report, test_plan, traceability};
use crate::markdown;
use crate::speckit::{Feature, Spec};
use crate::text;

/// A task line in the making.
struct PlannedTask {
    phase: String,
    done: bool,
    parallel: bool,
    story: Option<String>,
    description: String,
    requirements: Vec<String>,
}

fn generated(feature: &Feature) -> Vec<PlannedTask> {
    let spec = &feature.spec;
    let (paths, _) = core_implementation::layout(feature);
    let source_root = paths
        .iter()
        .find(|path| path.ends_with("src/"))
        .cloned()
        .unwrap_or_else(|| "src/".to_owned());
    let tests_root = paths
        .iter()
        .find(|path| path.ends_with("tests/"))
        .cloned()
        .unwrap_or_else(|| "tests/".to_owned());
    let mut tasks = vec![
        PlannedTask {
            phase: "Phase 1: Setup".to_owned(),
            done: false,
            parallel: false,
            story: None,
            description: format!(
                "Create the project structure per plan.md ({source_root}, {tests_root})"
            ),
            requirements: Vec::new(),
        },
        PlannedTask {
            phase: "Phase 1: Setup".to_owned(),
            done: false,
            parallel: true,
            story: None,
            description: "Configure formatting, linting and the test runner in CI".to_owned(),
            requirements: Vec::new(),
        },
    ];
    for model in architecture::entity_models(spec) {
        tasks.push(PlannedTask {
            phase: "Phase 2: Foundational".to_owned(),
            done: false,
            parallel: true,
            story: None,
            description: format!(
                "Create the {} model ({}) in {source_root}models/{}",
                model.name,
                model.fields_or_question(),
                snake(&model.name)
            ),
            requirements: Vec::new(),
        });
    }
    let traces = traceability::trace(spec);
    let mut stories: Vec<_> = spec.stories.iter().collect();
    stories.sort_by_key(|story| (story.priority.unwrap_or(u32::MAX), story.number));
    let mut placed: Vec<String> = Vec::new();
    for story in stories {
        let phase = format!(
            "Phase {}: User Story {} - {} (P{})",
            3 + story_index(spec, story.number),
            story.number,
            story.title,
            story.priority.map_or("?".to_owned(), |p| p.to_string())
        );
        for (index, scenario) in story.scenarios.iter().enumerate() {
            tasks.push(PlannedTask {
                phase: phase.clone(),
                done: false,
                parallel: true,
                story: Some(story.label()),
                description: format!(
                    "Acceptance test {}-AS{}: {} in {tests_root}integration/{}.test",
                    story.label(),
                    index + 1,
                    text::truncate(&scenario.then, 80),
                    snake(&core_implementation::short_name(&story.title))
                ),
                requirements: Vec::new(),
            });
        }
        for trace in traces.iter().filter(|trace| {
            trace.requirement.id.starts_with("FR-")
                && trace
                    .stories
                    .first()
                    .is_some_and(|first| first.number == story.number)
        }) {
            tasks.push(PlannedTask {
                phase: phase.clone(),
                done: false,
                parallel: false,
                story: Some(story.label()),
                description: format!(
                    "Implement {} ({}) in {source_root}services/{}",
                    text::summary(&trace.requirement.text, 90),
                    trace.requirement.id,
                    snake(&core_implementation::short_name(&story.title))
                ),
                requirements: vec![trace.requirement.id.clone()],
            });
            placed.push(trace.requirement.id.clone());
        }
    }
    for requirement in spec.requirements.iter().filter(|r| !placed.contains(&r.id)) {
        tasks.push(PlannedTask {
            phase: "Phase N: Polish & Cross-Cutting Concerns".to_owned(),
            done: false,
            parallel: false,
            story: None,
            description: format!(
                "Implement {} ({}) in {source_root}services/",
                text::summary(&requirement.text, 90),
                requirement.id
            ),
            requirements: vec![requirement.id.clone()],
        });
    }
    polish(spec, &mut tasks);
    tasks
}

fn story_index(spec: &Spec, number: usize) -> usize {
    let mut stories: Vec<_> = spec.stories.iter().collect();
    stories.sort_by_key(|story| (story.priority.unwrap_or(u32::MAX), story.number));
    stories
        .iter()
        .position(|story| story.number == number)
        .unwrap_or(0)
}

/// Measurement tasks for the success criteria and the documentation task.
fn polish(spec: &Spec, tasks: &mut Vec<PlannedTask>) {
    for criterion in &spec.success_criteria {
        tasks.push(PlannedTask {
            phase: "Phase N: Polish & Cross-Cutting Concerns".to_owned(),
            done: false,
            parallel: true,
            story: None,
            description: format!(
                "Measure {}: {}",
                criterion.id,
                text::truncate(&criterion.text, 100)
            ),
            requirements: vec![criterion.id.clone()],
        });
    }
    tasks.push(PlannedTask {
        phase: "Phase N: Polish & Cross-Cutting Concerns".to_owned(),
        done: false,
        parallel: true,
        story: None,
        description: "Write the usage guide, examples and migration notes in docs/".to_owned(),
        requirements: Vec::new(),
    });
}

/// tasks.md's tasks, then tasks for the requirements none of them covers.
fn from_task_list(feature: &Feature) -> Vec<PlannedTask> {
    let Some(list) = &feature.tasks else {
        return Vec::new();
    };
    let coverage = traceability::coverage(&feature.spec, &list.tasks);
    let mut tasks: Vec<PlannedTask> = list
        .tasks
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
            }
        })
        .collect();
    for row in coverage.rows.iter().filter(|row| row.tasks.is_empty()) {
        tasks.push(PlannedTask {
            phase: "Added: requirements no task covered".to_owned(),
            done: false,
            parallel: false,
            story: None,
            description: format!(
                "{} {} ({})",
                if row.id.starts_with("SC-") {
                    "Measure"
                } else {
                    "Implement"
                },
                row.summary,
                row.id
            ),
            requirements: vec![row.id.clone()],
        });
    }
    tasks
}

pub(crate) fn write(call: &Call<'_>) -> String {
    let feature = &call.feature;
    let spec = &feature.spec;
    let mut out = format!("# Implementation Plan: {}\n\n", feature.name);

    out.push_str("## Approach\n\n");
    let (paths, _) = core_implementation::layout(feature);
    let from_tasks = feature
        .tasks
        .as_ref()
        .is_some_and(|list| !list.tasks.is_empty());
    out.push_str(&format!(
        "Build the stories in priority order on a shared foundation, tests first: each acceptance scenario becomes a failing test before its implementation task. {} The layout follows {} ({} paths). Limits from the requirements are configuration.\n\n",
        if from_tasks {
            "The tasks are tasks.md's, with a task added for each requirement none of them covered."
        } else {
            "No tasks.md was given, so the tasks below are generated from the plan and the spec."
        },
        if feature.plan.as_ref().is_some_and(|plan| !plan.project_structure.is_empty()) {
            "plan.md's Project Structure"
        } else {
            "the derived layout"
        },
        paths.len()
    ));

    out.push_str("## Tasks\n\n");
    let tasks = if from_tasks {
        from_task_list(feature)
    } else {
        generated(feature)
    };
    let mut current_phase = String::new();
    for (index, task) in tasks.iter().enumerate() {
        if task.phase != current_phase {
            current_phase = task.phase.clone();
            out.push_str(&format!("### {current_phase}\n\n"));
        }
        let mut line = format!(
            "- [{}] T{:03}",
            if task.done { "x" } else { " " },
            index + 1
        );
        if task.parallel {
            line.push_str(" [P]");
        }
        if let Some(story) = &task.story {
            line.push_str(&format!(" [{story}]"));
        }
        line.push(' ');
        line.push_str(&task.description);
        let missing: Vec<&str> = task
            .requirements
            .iter()
            .filter(|id| !task.description.contains(id.as_str()))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            line.push_str(&format!(" — covers {}", missing.join(", ")));
        }
        out.push_str(&line);
        out.push('\n');
        let next_phase = tasks.get(index + 1).map(|next| next.phase.as_str());
        if next_phase != Some(current_phase.as_str()) {
            out.push('\n');
        }
    }
    if tasks.is_empty() {
        out.push_str("No tasks could be derived: the spec has no stories or requirements.\n\n");
    }

    out.push_str("## Dependencies\n\n");
    let mut dependencies = vec![
        "Setup → Foundational → user stories → Polish; Foundational blocks every story.".to_owned(),
        "Within a story: tests (marked [P]) first, then models, then services, then the user interface.".to_owned(),
        "Stories of different priorities can run in parallel after the foundation; validate the P1 story (MVP) first.".to_owned(),
    ];
    if let Some(list) = &feature.tasks {
        for task in &list.tasks {
            if !task.depends_on.is_empty() {
                dependencies.push(format!(
                    "{} depends on {}",
                    task.id,
                    task.depends_on.join(", ")
                ));
            }
        }
    }
    for question in &spec.open_questions {
        if let Some(id) = &question.requirement {
            dependencies.push(format!(
                "Tasks covering {id} wait on its open question: {}",
                text::truncate(&question.question, 100)
            ));
        }
    }
    out.push_str(&report::bullets(&dependencies, ""));

    out.push_str("## Requirements Traceability\n\n");
    let rows: Vec<Vec<String>> = spec
        .requirements
        .iter()
        .chain(&spec.success_criteria)
        .map(|requirement| {
            let ids: Vec<String> = tasks
                .iter()
                .enumerate()
                .filter(|(_, task)| task.requirements.contains(&requirement.id))
                .map(|(index, _)| format!("T{:03}", index + 1))
                .collect();
            vec![
                requirement.id.clone(),
                text::summary(&requirement.text, 80),
                ids.join(", "),
            ]
        })
        .collect();
    if rows.is_empty() {
        out.push_str("The spec defines no requirements.\n\n");
    } else {
        markdown::table(&mut out, &["Requirement", "Summary", "Tasks"], &rows);
        out.push('\n');
    }

    out.push_str("## API Contracts\n\n");
    let interfaces = architecture::interfaces(spec);
    if interfaces.is_empty() {
        out.push_str("No operations derived from the requirements.\n\n");
    } else {
        let api = integrations::api_stated(&call.feature).is_some();
        let rows: Vec<Vec<String>> = interfaces
            .iter()
            .map(|interface| {
                let (method, path, answer) = integrations::contract(&call.feature, api, interface);
                vec![interface.requirement.clone(), method, path, answer]
            })
            .collect();
        markdown::table(
            &mut out,
            &["Requirement", "Method", "Path / event", "Success"],
            &rows,
        );
        out.push('\n');
    }

    out.push_str("## Test Plan\n\n");
    let tests = test_plan::tests(spec);
    out.push_str(&format!(
        "{} tests: {} acceptance (one per scenario), {} edge case, {} measurement.\n\n",
        tests.len(),
        tests
            .iter()
            .filter(|test| test.kind == "acceptance")
            .count(),
        tests.iter().filter(|test| test.kind == "edge case").count(),
        tests
            .iter()
            .filter(|test| test.kind == "measurement")
            .count()
    ));

    out.push_str(&report::open_questions(feature, "Open Questions"));
    out.push_str(&sources(call));
    out
}
