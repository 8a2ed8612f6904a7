//! The built-in analysts on projects made by the real `specify init` (specify-cli from PyPI,
//! installed by `.ci/run` into `target/venv-speckit`), each with a feature that already has
//! the team's own plan.md and tasks.md: spec-kit's older template, its current one, a
//! free-form spec and a Japanese one, and a spec whose ordinary words ("go", "swift", "rust")
//! must not become a language. The fixtures are under `tests/fixtures/specs/`. Through the
//! binary: plan → prep → analyze with and without the team's tasks.md (prep writes or extends
//! it), coverage judged by what tasks do, numbered requirements for a free-form spec, a plan
//! that contradicts the constitution, and what `modify --feedback` says on the builtin.

use std::path::{Path, PathBuf};

use crate::harness::{EXIT_AWAITING_DECISION, EXIT_DONE, TestRepo};

/// Files of a fixture that belong at the repository root rather than in the feature.
const ROOT_FILES: &[&str] = &["go.mod", "package.json", "Cargo.toml", "pyproject.toml"];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `specify` from the venv `.ci/run` makes; a clear failure when it is missing.
fn specify() -> PathBuf {
    let path = workspace().join("target/venv-speckit/bin/specify");
    assert!(
        path.exists(),
        "specify-cli is not installed at {}: run `python3 -m venv target/venv-speckit && target/venv-speckit/bin/pip install specify-cli` (`.ci/run` does it)",
        path.display()
    );
    path
}

/// A repository made by `specify init` with the fixture as its one feature `specs/DIR`, no
/// `stagegate.toml` (every agent on the built-in backend), and spec.md approved.
fn speckit_project(fixture: &str, dir: &str) -> TestRepo {
    let repo = TestRepo::new();
    std::fs::remove_file(repo.path("stagegate.toml")).expect("remove stagegate.toml");
    std::fs::remove_dir_all(repo.path("specs")).expect("remove the fixture feature");
    let init = std::process::Command::new(specify())
        .args([
            "init",
            "--here",
            "--force",
            "--integration",
            "claude",
            "--script",
            "sh",
            "--ignore-agent-tools",
            "--non-interactive",
        ])
        .current_dir(&repo.root)
        .env("NO_COLOR", "1")
        .output()
        .expect("run specify init");
    assert!(
        init.status.success(),
        "specify init failed: {}\n{}",
        String::from_utf8_lossy(&init.stdout),
        String::from_utf8_lossy(&init.stderr)
    );
    let source = workspace()
        .join("crates/stagegate/tests/fixtures/specs")
        .join(fixture);
    for entry in std::fs::read_dir(&source).expect("read the fixture") {
        let entry = entry.expect("a fixture file");
        let name = entry.file_name().to_string_lossy().into_owned();
        let target = if ROOT_FILES.contains(&name.as_str()) {
            repo.path(&name)
        } else {
            repo.path(&format!("specs/{dir}/{name}"))
        };
        std::fs::create_dir_all(target.parent().expect("a parent")).expect("mkdir");
        std::fs::copy(entry.path(), target).expect("copy the fixture");
    }
    repo.run(&["approve", "spec"]).expect_code(EXIT_DONE);
    repo
}

/// A fixture project whose feature has no tasks.md.
fn speckit_project_without_tasks(fixture: &str, dir: &str) -> TestRepo {
    let repo = speckit_project(fixture, dir);
    std::fs::remove_file(repo.path(&format!("specs/{dir}/tasks.md"))).expect("remove tasks.md");
    repo
}

/// plan → approve → prep → approve, through the binary; prep's run and its gate's output.
fn through_prep(repo: &TestRepo) -> (String, crate::harness::Outcome) {
    let plan = plan_to_gate(repo);
    repo.run(&["approve", &plan]).expect_code(EXIT_DONE);
    let prep = repo
        .run(&["run", "prep", "--no-input"])
        .expect_code(EXIT_AWAITING_DECISION);
    let run = prep.run_id();
    repo.run(&["approve", &run]).expect_code(EXIT_DONE);
    (run, prep)
}

/// `run analyze --no-input` to the gate; the staged quality_report.md.
fn analyzed(repo: &TestRepo) -> String {
    let run = repo
        .run(&["run", "analyze", "--no-input"])
        .expect_code(EXIT_AWAITING_DECISION)
        .run_id();
    std::fs::read_to_string(repo.run_dir(&run).join("analyze/staged/quality_report.md"))
        .expect("quality_report.md staged")
}

/// The issue rows of a quality report with this category and severity.
fn issues<'a>(report: &'a str, category: &str, severity: &str) -> Vec<&'a str> {
    report
        .lines()
        .filter(|line| line.contains(&format!("| {category} | {severity} |")))
        .collect()
}

/// `run plan --no-input` to the gate; that run's id.
fn plan_to_gate(repo: &TestRepo) -> String {
    repo.run(&["run", "plan", "--no-input"])
        .expect_code(EXIT_AWAITING_DECISION)
        .run_id()
}

/// A staged artifact of the plan stage's run, empty when it was not written.
fn staged(repo: &TestRepo, run: &str, name: &str) -> String {
    std::fs::read_to_string(repo.run_dir(run).join("plan/staged").join(name)).unwrap_or_default()
}

/// `run plan --no-input` to the gate; the staged plan.md.
fn planned(repo: &TestRepo) -> String {
    let run = plan_to_gate(repo);
    let plan = staged(repo, &run, "plan.md");
    assert!(!plan.is_empty(), "no plan.md staged");
    plan
}

/// The `**Key**:` line of plan.md's Technical Context.
fn context_line<'a>(plan: &'a str, key: &str) -> &'a str {
    plan.lines()
        .find(|line| line.starts_with(&format!("**{key}**:")))
        .unwrap_or_else(|| panic!("no {key} line in plan.md:\n{plan}"))
}

/// The traceability row of a requirement (`| FR-003 | … |`).
fn trace_row<'a>(plan: &'a str, id: &str) -> &'a str {
    plan.lines()
        .find(|line| line.starts_with(&format!("| {id} |")))
        .unwrap_or_else(|| panic!("no row for {id} in plan.md:\n{plan}"))
}

/// Nothing of the bundled example's domain, no invented endpoint, platform or duration.
fn assert_nothing_invented(artifact: &str) {
    let words: Vec<String> = artifact
        .split(|c: char| !c.is_alphanumeric())
        .map(str::to_lowercase)
        .collect();
    for word in ["thumbnail", "thumbnails", "media", "linux"] {
        assert!(
            !words.iter().any(|w| w == word),
            "\"{word}\" is not in the inputs but is in:\n{artifact}"
        );
    }
    for phrase in ["/resources", "person-day", "object storage"] {
        assert!(
            !artifact.contains(phrase),
            "\"{phrase}\" is not in the inputs but is in:\n{artifact}"
        );
    }
}

#[test]
fn ordinary_words_name_no_language_and_the_placeholder_constitution_is_reported() {
    let repo = speckit_project("ordinary-words", "014-team-reminders");
    let run = plan_to_gate(&repo);
    let plan = staged(&repo, &run, "plan.md");
    let language = context_line(&plan, "Language/Version");
    assert!(language.contains("NEEDS CLARIFICATION"), "{language}");
    for line in plan.lines().filter(|line| line.starts_with("**")) {
        for word in ["Go", "Swift", "Rust"] {
            assert!(
                !line
                    .split(|c: char| !c.is_alphanumeric())
                    .any(|w| w == word),
                "the plan names {word}: {line}"
            );
        }
    }
    assert!(
        context_line(&plan, "Target Platform").contains("NEEDS CLARIFICATION"),
        "{plan}"
    );
    assert!(
        plan.contains("unfilled template") && plan.contains("[PRINCIPLE_1_NAME]"),
        "the placeholder constitution is not reported:\n{plan}"
    );
    assert!(!plan.contains("| PASS |"), "{plan}");
    // A task's owner is not access control.
    assert!(
        !plan.contains("Authentication and access control"),
        "{plan}"
    );
    assert_nothing_invented(&plan);
    // The entities have the attributes the spec gives, and no invented `id`.
    let data_model = staged(&repo, &run, "data-model.md");
    assert!(data_model.contains("`owner`"), "{data_model}");
    assert!(!data_model.contains("`id`"), "{data_model}");
    // "handle errors consistently" gets no endpoint: the inputs state no API.
    for artifact in [
        "plan.md",
        "research.md",
        "data-model.md",
        "planning-summary.md",
    ] {
        assert_nothing_invented(&staged(&repo, &run, artifact));
    }
}

#[test]
fn the_older_template_is_read_and_the_existing_plan_and_go_mod_are_built_on() {
    let repo = speckit_project("older-template", "010-meter-import");
    let plan = planned(&repo);
    let language = context_line(&plan, "Language/Version");
    assert!(
        language.contains("Go 1.21") && language.contains("existing plan.md"),
        "{language}"
    );
    assert!(context_line(&plan, "Storage").contains("MySQL 8"), "{plan}");
    assert!(trace_row(&plan, "FR-002").contains("US1"), "{plan}");
    assert!(
        !plan.contains("markers remain"),
        "a checklist line became an open question:\n{plan}"
    );
    assert_nothing_invented(&plan);
}

#[test]
fn the_current_template_links_requirements_to_stories_by_id() {
    let repo = speckit_project("current-template", "011-flashcards");
    let plan = planned(&repo);
    assert!(
        context_line(&plan, "Language/Version").contains("TypeScript 5.4"),
        "{plan}"
    );
    assert!(trace_row(&plan, "FR-003").contains("US2"), "{plan}");
    assert!(trace_row(&plan, "FR-001").contains("US1"), "{plan}");
    assert_nothing_invented(&plan);
}

#[test]
fn a_free_form_spec_gives_its_summary_as_the_problem() {
    let repo = speckit_project("free-form", "012-invoice-reminders");
    let plan = planned(&repo);
    assert!(plan.contains("Small businesses forget"), "{plan}");
    assert!(context_line(&plan, "Language/Version").contains("Python 3.12"));
    assert_nothing_invented(&plan);
}

#[test]
fn a_japanese_spec_links_requirements_to_stories_by_id() {
    let repo = speckit_project("japanese", "013-toll-import");
    let plan = planned(&repo);
    assert!(trace_row(&plan, "FR-001").contains("US1"), "{plan}");
    assert!(trace_row(&plan, "FR-003").contains("US2"), "{plan}");
    assert!(!trace_row(&plan, "FR-003").contains("Polish"), "{plan}");
    assert!(context_line(&plan, "Language/Version").contains("Go 1.22"));
    assert_nothing_invented(&plan);
}

#[test]
fn the_extension_installs_with_the_real_specify_cli_and_keeps_the_configuration() {
    let repo = speckit_project("ordinary-words", "014-team-reminders");
    repo.write("stagegate.toml", "[defaults]\nbackend = \"builtin\"\n");
    let bin = specify();
    let path = format!(
        "{}:{}",
        bin.parent().expect("the venv's bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    repo.run_with_env(&["init", "--speckit-extension"], &[("PATH", &path)])
        .expect_code(EXIT_DONE)
        .stderr_has("kept")
        .stderr_has("registered the extension with spec-kit");
    assert_eq!(
        repo.read("stagegate.toml"),
        "[defaults]\nbackend = \"builtin\"\n"
    );
    let hooks = repo.read(".specify/extensions.yml");
    for (event, command) in [
        ("after_plan", "speckit.stagegate.plan"),
        ("after_tasks", "speckit.stagegate.prep"),
        ("after_implement", "speckit.stagegate.analyze"),
    ] {
        let at = hooks
            .find(&format!("  {event}:"))
            .unwrap_or_else(|| panic!("no {event} hook:\n{hooks}"));
        assert!(hooks[at..].contains(command), "{hooks}");
    }
    assert!(!hooks.contains("before_analyze"), "{hooks}");
    assert!(repo.exists(".specify/extensions/stagegate/extension.yml"));
    // Installing again (the extension is registered) still keeps the configuration.
    repo.run_with_env(
        &["init", "--speckit-extension", "--force"],
        &[("PATH", &path)],
    )
    .expect_code(EXIT_DONE);
    assert_eq!(
        repo.read("stagegate.toml"),
        "[defaults]\nbackend = \"builtin\"\n"
    );
}

#[test]
fn prep_builds_on_the_existing_tasks_and_analyze_says_it_ran_before_implementation() {
    let repo = speckit_project("current-template", "011-flashcards");
    let plan = plan_to_gate(&repo);
    repo.run(&["approve", &plan]).expect_code(EXIT_DONE);
    let prep = repo
        .run(&["run", "prep", "--no-input"])
        .expect_code(EXIT_AWAITING_DECISION)
        .run_id();
    let implementation = std::fs::read_to_string(
        repo.run_dir(&prep)
            .join("prep/staged/implementation_plan.md"),
    )
    .expect("implementation_plan.md staged");
    assert!(
        implementation.contains("The tasks are tasks.md's"),
        "{implementation}"
    );
    repo.run(&["approve", &prep]).expect_code(EXIT_DONE);
    // One of the team's four tasks is open, and prep added one for FR-004, which none of
    // them does: analyze runs where /speckit.analyze does, and says so.
    let analyze = repo
        .run(&["run", "analyze", "--no-input"])
        .expect_code(EXIT_AWAITING_DECISION)
        .run_id();
    let report = std::fs::read_to_string(
        repo.run_dir(&analyze)
            .join("analyze/staged/quality_report.md"),
    )
    .expect("quality_report.md staged");
    assert!(
        report.contains("before implementation") && report.contains("2 of 5 tasks"),
        "{report}"
    );
}

#[test]
fn prep_writes_tasks_md_in_spec_kits_format_and_the_builtin_path_reaches_analyze() {
    let repo = speckit_project_without_tasks("current-template", "011-flashcards");
    let (_, prep) = through_prep(&repo);
    assert!(
        prep.stderr
            .contains("approval creates implementation_plan.md, tasks.md"),
        "{prep:?}"
    );
    let tasks = repo.read("specs/011-flashcards/tasks.md");
    // spec-kit's phases in its order: the stories by priority between Foundational and Polish.
    let phases: Vec<&str> = tasks
        .lines()
        .filter_map(|line| line.strip_prefix("## Phase "))
        .map(|title| title.split(" (").next().unwrap_or(title))
        .collect();
    assert_eq!(
        phases,
        [
            "1: Setup",
            "2: Foundational",
            "3: User Story 1 - Review due cards",
            "4: User Story 2 - Add a card",
            "5: Polish & Cross-Cutting Concerns"
        ],
        "{tasks}"
    );
    assert!(
        tasks.contains("\n## Dependencies & Execution Order\n"),
        "{tasks}"
    );
    assert!(
        tasks.contains("[US2] Implement FR-003 in src/cards/"),
        "{tasks}"
    );
    assert!(tasks.contains("Implement FR-001") && tasks.contains("Verify SC-001"));
    assert_nothing_invented(&tasks);
    let open = tasks
        .lines()
        .filter(|line| line.starts_with("- [ ] T"))
        .count();
    assert!(open >= 8, "{tasks}");
    // analyze runs on it before implementation, counts exactly its tasks and finds no gap.
    let report = analyzed(&repo);
    assert!(
        report.contains("before implementation")
            && report.contains(&format!("{open} of {open} tasks")),
        "{report}"
    );
    assert!(
        issues(&report, "Coverage Gap", "HIGH").is_empty(),
        "{report}"
    );
    assert!(!report.contains("[PRINCIPLE_2_NAME]"), "{report}");
}

#[test]
fn analyze_judges_coverage_by_what_the_teams_tasks_do() {
    let repo = speckit_project("older-template", "010-meter-import");
    let original = repo.read("specs/010-meter-import/tasks.md");
    let (prep, gate) = through_prep(&repo);
    // FR-005 alone has no task: prep appends one and keeps every line the team wrote.
    assert!(gate.stderr.contains("REPLACES tasks.md"), "{gate:?}");
    let tasks = repo.read("specs/010-meter-import/tasks.md");
    assert!(tasks.starts_with(original.trim_end()), "{tasks}");
    let added = &tasks[original.trim_end().len()..];
    assert!(
        added.contains("- [ ] T006 [US1] Implement FR-005") && !added.contains("FR-001"),
        "{added}"
    );
    let report = analyzed(&repo);
    assert!(
        issues(&report, "Coverage Gap", "HIGH").is_empty(),
        "{report}"
    );
    for id in ["FR-001", "FR-002", "FR-003", "FR-004"] {
        let row = report
            .lines()
            .find(|line| line.starts_with(&format!("| {id} | yes |")))
            .unwrap_or_else(|| panic!("{id} is not covered:\n{report}"));
        assert!(row.contains("matched by what the tasks do"), "{row}");
    }
    assert!(report.contains("1 of 6 tasks"), "{report}");
    assert!(!report.contains("markers remain"), "{report}");
    // The team's tasks.md comes back as it was.
    repo.run(&["restore", &prep]).expect_code(EXIT_DONE);
    assert_eq!(repo.read("specs/010-meter-import/tasks.md"), original);
}

#[test]
fn japanese_tasks_cover_their_requirements_and_prep_leaves_them_alone() {
    let repo = speckit_project("japanese", "013-toll-import");
    let original = repo.read("specs/013-toll-import/tasks.md");
    let (_, gate) = through_prep(&repo);
    assert!(
        gate.stderr
            .contains("approval creates implementation_plan.md\n"),
        "{gate:?}"
    );
    assert_eq!(repo.read("specs/013-toll-import/tasks.md"), original);
    let report = analyzed(&repo);
    assert!(
        report.contains("all 3 tasks in tasks.md are checked"),
        "{report}"
    );
    for severity in ["HIGH", "MEDIUM"] {
        assert!(
            issues(&report, "Coverage Gap", severity).is_empty(),
            "{report}"
        );
    }
    assert!(
        report.starts_with("# Quality Report: 通行料金データの取り込み\n"),
        "{report}"
    );
}

#[test]
fn a_free_form_spec_gives_numbered_requirements_the_plan_traces() {
    let repo = speckit_project("free-form", "012-invoice-reminders");
    let plan = planned(&repo);
    for (id, line) in [("DR-001", 10), ("DR-004", 13)] {
        assert!(trace_row(&plan, id).contains("| "), "{plan}");
        assert!(
            plan.contains(&format!("derived from spec.md:{line}")) || plan.contains(id),
            "{plan}"
        );
    }
    assert!(
        trace_row(&plan, "DR-004").contains("Never send a reminder"),
        "{plan}"
    );
}

#[test]
fn a_plan_that_contradicts_the_constitution_fails_qa_citing_both() {
    let repo = speckit_project("older-template", "010-meter-import");
    repo.write(
        ".specify/memory/constitution.md",
        "# Meters Constitution\n\n## Core Principles\n\n### I. One Database\n\nServices MUST NOT use MySQL or MongoDB; readings MUST be kept in PostgreSQL.\n\n### II. Test-First\n\nTests MUST be written first.\n",
    );
    let outcome = repo
        .run(&["run", "plan", "--no-input"])
        .expect_code(EXIT_AWAITING_DECISION);
    assert!(outcome.stderr.contains("REWORK"), "{outcome:?}");
    let plan = staged(&repo, &outcome.run_id(), "plan.md");
    let row = plan
        .lines()
        .find(|line| line.starts_with("| One Database (constitution.md:5) |"))
        .unwrap_or_else(|| panic!("no row for the principle:\n{plan}"));
    assert!(
        row.contains("| FAIL |")
            && row.contains("Services MUST NOT use MySQL or MongoDB")
            && row.contains("MySQL 8 (existing plan.md (Technical Context))"),
        "{row}"
    );
    assert!(
        plan.contains("| Test-First (constitution.md:9) |"),
        "{plan}"
    );
}

#[test]
fn modify_feedback_on_the_builtin_says_it_applied_nothing_and_what_the_ids_hold() {
    let repo = speckit_project("current-template", "011-flashcards");
    let run = plan_to_gate(&repo);
    repo.run(&[
        "modify",
        &run,
        "--no-input",
        "--feedback",
        "Switch the storage to PostgreSQL for FR-003. Trace FR-099 too.",
    ])
    .expect_code(EXIT_AWAITING_DECISION);
    let plan = staged(&repo, &run, "plan.md");
    let revisions = &plan[plan.find("## Revisions").expect("a Revisions section")..];
    for said in [
        "applied none of this feedback",
        "Unchanged: apart from this section, the artifact is exactly the previous round's.",
        "Not applied.",
        "FR-003 is traced in this artifact, as it was in the previous round.",
        "FR-099 is not defined in spec.md",
    ] {
        assert!(revisions.contains(said), "{said:?} not in:\n{revisions}");
    }
    assert!(
        !context_line(&plan, "Storage").contains("PostgreSQL"),
        "{plan}"
    );
}
