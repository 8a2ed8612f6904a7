//! `implementation_plan.md`: Approach → Tasks → Dependencies. Tasks are in spec-kit's
//! `- [ ] T001 [P] [US1] description (path)` form (see [`task_breakdown`]): tasks.md's own
//! tasks when it exists (with tasks added for requirements nothing covers), else the
//! breakdown prep's `tasks.md` holds. Every requirement id appears in a task or the
//! traceability table.

use crate::analysts::core_implementation::LayoutOrigin;
use crate::analysts::synthesis::sources;
use crate::analysts::{
    Call, architecture, core_implementation, integrations, report, task_breakdown, test_plan,
};
use crate::markdown;
use crate::text;

pub(crate) fn write(call: &Call<'_>) -> String {
    let feature = &call.feature;
    let spec = &feature.spec;
    let mut out = format!("# Implementation Plan: {}\n\n", feature.name);

    out.push_str("## Approach\n\n");
    let (paths, origin) = core_implementation::layout(feature);
    let from_tasks = feature
        .tasks
        .as_ref()
        .is_some_and(|list| !list.tasks.is_empty());
    out.push_str(&format!(
        "Build the stories in priority order on a shared foundation, tests first: each acceptance scenario becomes a failing test before its implementation task. {} {} Limits from the requirements are configuration.\n\n",
        if from_tasks {
            "The tasks are tasks.md's, with a task added for each requirement none of them covered."
        } else if feature.tasks.is_some() {
            "The feature's tasks.md lists no tasks, so the tasks below are traced to the spec's stories and requirements and the plan's Project Structure."
        } else {
            "The feature has no tasks.md, so the tasks below are traced to the spec's stories and requirements and the plan's Project Structure (prep's tasks.md holds the same list)."
        },
        match origin {
            LayoutOrigin::Plan =>
                format!("File paths follow plan.md's Project Structure ({} paths).", paths.len()),
            LayoutOrigin::Tasks => format!("File paths are the {} tasks.md names.", paths.len()),
            LayoutOrigin::Derived => "No input names the source layout, so file paths are NEEDS CLARIFICATION: decide them in plan.md's Project Structure.".to_owned(),
        }
    ));

    out.push_str("## Tasks\n\n");
    let tasks = task_breakdown::tasks(feature);
    out.push_str(&task_breakdown::render(&tasks, "###", |_| String::new()));
    if tasks.is_empty() {
        out.push_str("No tasks could be derived: the spec has no stories or requirements.\n\n");
    }

    out.push_str("## Dependencies\n\n");
    let dependencies = task_breakdown::dependencies(feature, &tasks);
    out.push_str(&report::bullets(&dependencies, ""));

    out.push_str("## Requirements Traceability\n\n");
    let rows: Vec<Vec<String>> = spec
        .requirements
        .iter()
        .chain(&spec.success_criteria)
        .map(|requirement| {
            let ids: Vec<String> = tasks
                .iter()
                .filter(|task| task.requirements.contains(&requirement.id))
                .map(|task| task.id.clone())
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
