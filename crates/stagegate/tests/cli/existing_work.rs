//! The person's existing work in the feature directory: the gate says what approval would
//! replace, every replaced file is kept and `restore` brings it back, and `approve STAGE` adopts
//! an existing plan so that the next stage can start without replacing it.

use crate::harness::{
    EXIT_AWAITING_DECISION, EXIT_DONE, EXIT_INPUT_MISSING, EXIT_USAGE, FEATURE, TestRepo,
};

const TEAM_PLAN: &str = "# Our plan\n\nGo 1.21, gRPC, MySQL; a 10k-row CSV import.\n";

fn repo_with_a_plan() -> TestRepo {
    let repo = TestRepo::with_approved_spec().set("defaults", "backend", "\"builtin\"");
    repo.write(&format!("{FEATURE}/plan.md"), TEAM_PLAN);
    repo
}

#[test]
fn the_gate_says_what_approval_replaces_and_restore_brings_it_back() {
    let repo = repo_with_a_plan();
    let outcome = repo
        .run(&["run", "plan", "--no-input"])
        .expect_code(EXIT_AWAITING_DECISION)
        .stderr_has("REPLACES plan.md (+")
        .stderr_has("approval creates ")
        .stderr_has("planning-summary.md");
    let run = outcome.run_id();
    assert_eq!(repo.read(&format!("{FEATURE}/plan.md")), TEAM_PLAN);

    repo.run(&["approve", &run])
        .expect_code(EXIT_DONE)
        .stderr_has("replaced plan.md; the previous versions are kept");
    assert_ne!(repo.read(&format!("{FEATURE}/plan.md")), TEAM_PLAN);
    assert_eq!(
        std::fs::read_to_string(repo.run_dir(&run).join("plan/replaced/plan.md"))
            .expect("the replaced plan.md is kept"),
        TEAM_PLAN
    );

    repo.run(&["restore", &run]).expect_code(EXIT_DONE);
    assert_eq!(repo.read(&format!("{FEATURE}/plan.md")), TEAM_PLAN);
    assert!(
        !repo.exists(&format!("{FEATURE}/planning-summary.md")),
        "a file the approval created is removed"
    );
}

#[test]
fn restore_leaves_a_file_edited_since_alone_unless_forced() {
    let repo = repo_with_a_plan();
    let run = repo.run_plan_to_gate();
    repo.run(&["approve", &run]).expect_code(EXIT_DONE);
    let edited = "# Plan, edited by hand after the approval\n";
    repo.write(&format!("{FEATURE}/plan.md"), edited);

    repo.run(&["restore", &run])
        .expect_code(1)
        .stderr_has("changed since run")
        .stderr_has("nothing was restored");
    assert_eq!(repo.read(&format!("{FEATURE}/plan.md")), edited);
    repo.run(&["restore", &run, "--force"])
        .expect_code(EXIT_DONE);
    assert_eq!(repo.read(&format!("{FEATURE}/plan.md")), TEAM_PLAN);

    repo.run(&["restore", "no-such-run"])
        .expect_code(EXIT_USAGE);
}

#[test]
fn adopting_an_existing_plan_lets_prep_start_and_writes_nothing() {
    let repo = repo_with_a_plan();
    repo.run(&["run", "prep", "--no-input"])
        .expect_code(EXIT_INPUT_MISSING);
    // A plan run waiting at its gate: adopting the existing plan instead supersedes it, so
    // that nobody later approves that run's plan over the adopted one by mistake.
    let waiting = repo.run_plan_to_gate();
    repo.run(&["approve", "plan"])
        .expect_code(EXIT_DONE)
        .stdout_has(&format!("{FEATURE}/plan.md"))
        .stderr_has("nothing was written")
        .stderr_has(&format!("run {waiting}'s plan gate was still waiting"));
    assert_eq!(
        repo.run_status(&waiting)["run"]["state"],
        "superseded",
        "the waiting plan run"
    );
    assert_eq!(repo.read(&format!("{FEATURE}/plan.md")), TEAM_PLAN);
    repo.run(&["run", "prep", "--no-input"])
        .expect_code(EXIT_AWAITING_DECISION);
    assert_eq!(repo.read(&format!("{FEATURE}/plan.md")), TEAM_PLAN);

    // A plan edited after its adoption is stale again, as with any approval.
    repo.write(&format!("{FEATURE}/plan.md"), "# changed\n");
    repo.run(&["run", "prep", "--no-input"])
        .expect_code(EXIT_INPUT_MISSING)
        .stderr_has("plan.md changed since it was approved");
}

#[test]
fn adopting_needs_the_artifacts_later_stages_read() {
    let repo = TestRepo::with_approved_spec();
    repo.run(&["approve", "plan"])
        .expect_code(EXIT_INPUT_MISSING)
        .stderr_has("plan.md is missing");
}

#[test]
fn the_json_gate_event_names_the_files_approval_creates_and_replaces() {
    let repo = repo_with_a_plan();
    let events = repo
        .run(&["run", "plan", "--no-input", "--json"])
        .expect_code(EXIT_AWAITING_DECISION)
        .json_lines();
    let waiting = events
        .iter()
        .find(|event| event["event"] == "gate_waiting")
        .expect("a gate_waiting event");
    assert_eq!(
        waiting["replaces"],
        serde_json::json!(["plan.md"]),
        "{waiting}"
    );
    let creates = waiting["creates"].as_array().expect("creates");
    assert!(
        creates.iter().any(|name| name == "planning-summary.md"),
        "{waiting}"
    );
}
