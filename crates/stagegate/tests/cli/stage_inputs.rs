//! A stage whose input is missing or stale does not start (exit 5), says what is missing and
//! how to get it, and leaves no run behind.

use crate::harness::{
    EXIT_AWAITING_DECISION, EXIT_DONE, EXIT_INPUT_MISSING, FEATURE, Outcome, TestRepo,
};

/// Runs `args`, expects exit 5 and no new run in the state database.
fn refused(repo: &TestRepo, args: &[&str]) -> Outcome {
    let runs = repo.run_count();
    let outcome = repo.run(args).expect_code(EXIT_INPUT_MISSING);
    assert_eq!(
        repo.run_count(),
        runs,
        "a refused run was recorded: {outcome:?}"
    );
    outcome
}

#[test]
fn plan_needs_an_approved_spec() {
    let repo = TestRepo::new();
    refused(&repo, &["run", "plan", "--no-input"])
        .stderr_has("spec.md")
        .stderr_has("stagegate approve spec");
    assert!(repo.calls().0.is_empty(), "an agent ran");
}

#[test]
fn plan_refuses_a_spec_edited_after_its_approval() {
    let repo = TestRepo::with_approved_spec();
    let spec = format!("{FEATURE}/spec.md");
    let edited = format!(
        "{}\n- **FR-004**: System MUST export albums.\n",
        repo.read(&spec)
    );
    repo.write(&spec, &edited);
    refused(&repo, &["run", "plan", "--no-input"])
        .stderr_has("changed")
        .stderr_has("stagegate approve spec");
    // Approving the new content lets it run.
    repo.run(&["approve", "spec"]).expect_code(EXIT_DONE);
    repo.run_plan_to_gate();
}

#[test]
fn a_missing_spec_stops_plan() {
    let repo = TestRepo::new();
    std::fs::remove_file(repo.path(&format!("{FEATURE}/spec.md"))).expect("remove spec.md");
    refused(&repo, &["approve", "spec"]).stderr_has("spec.md");
    refused(&repo, &["run", "plan", "--no-input"])
        .stderr_has("spec.md does not exist")
        .stderr_has("/speckit.specify");
}

#[test]
fn prep_and_analyze_need_the_earlier_gates_and_current_inputs() {
    let repo = TestRepo::with_approved_spec();

    // prep before the plan gate approved plan.md.
    refused(&repo, &["run", "prep", "--no-input"])
        .stderr_has("plan.md")
        .stderr_has("stagegate run plan");

    let plan_run = repo.run_plan_to_gate();
    // Still not approved: waiting at the gate is not an approval.
    refused(&repo, &["run", "prep", "--no-input"]).stderr_has("plan.md");
    repo.run(&["approve", &plan_run]).expect_code(EXIT_DONE);

    // analyze with open tasks runs as spec-kit's /speckit.analyze does: after tasks, before
    // implementing.
    let analyze = repo
        .run(&["run", "analyze", "--no-input"])
        .expect_code(EXIT_AWAITING_DECISION)
        .run_id();
    repo.run(&["reject", &analyze, "--reason", "not now"])
        .expect_code(EXIT_DONE);

    // spec.md changed since plan.md was approved: prep refuses, naming the change.
    let spec = format!("{FEATURE}/spec.md");
    let edited = format!(
        "{}\n- **FR-004**: System MUST export albums.\n",
        repo.read(&spec)
    );
    repo.write(&spec, &edited);
    refused(&repo, &["run", "prep", "--no-input"])
        .stderr_has("spec.md changed")
        .stderr_has("stagegate run plan");
    // Even with the new spec approved, plan.md was planned from the old one.
    repo.run(&["approve", "spec"]).expect_code(EXIT_DONE);
    refused(&repo, &["run", "prep", "--no-input"])
        .stderr_has("spec.md changed since plan.md was approved");

    // An approved artifact edited by hand is stale for analyze.
    let plan = format!("{FEATURE}/plan.md");
    repo.write(&plan, &format!("{}\nedited by hand\n", repo.read(&plan)));
    refused(&repo, &["run", "analyze", "--no-input"]).stderr_has("plan.md changed");
}

// Issue 12: inputs are regular files of at most 10 MiB inside the repository.

/// `refused`, but a run that hangs fails the test instead of the whole suite.
fn refused_in_time(repo: &TestRepo, args: &[&str]) -> Outcome {
    let runs = repo.run_count();
    let outcome =
        crate::harness::wait_for_exit(repo.spawn(args), args, std::time::Duration::from_secs(20))
            .expect_code(EXIT_INPUT_MISSING);
    assert_eq!(repo.run_count(), runs, "a refused run was recorded");
    assert!(repo.calls().0.is_empty(), "an agent ran");
    outcome
}

#[test]
fn a_fifo_as_spec_is_refused_without_hanging() {
    let repo = TestRepo::with_approved_spec();
    let spec = repo.path(&format!("{FEATURE}/spec.md"));
    std::fs::remove_file(&spec).expect("remove spec.md");
    crate::configuration::make_fifo(&spec);
    refused_in_time(&repo, &["run", "plan", "--no-input"])
        .stderr_has("spec.md is a FIFO")
        .stderr_has("regular file");
    refused_in_time(&repo, &["approve", "spec"]).stderr_has("FIFO");
}

#[test]
fn a_directory_as_an_input_is_refused() {
    let repo = TestRepo::with_approved_spec();
    let spec = repo.path(&format!("{FEATURE}/spec.md"));
    std::fs::remove_file(&spec).expect("remove spec.md");
    std::fs::create_dir(&spec).expect("mkdir spec.md");
    refused_in_time(&repo, &["run", "plan", "--no-input"]).stderr_has("spec.md is a directory");
}

#[test]
fn a_tasks_fifo_does_not_hang_analyze() {
    let repo = TestRepo::with_approved_spec();
    let tasks = repo.path(&format!("{FEATURE}/tasks.md"));
    std::fs::remove_file(&tasks).expect("remove tasks.md");
    crate::configuration::make_fifo(&tasks);
    refused_in_time(&repo, &["run", "analyze", "--no-input"]).stderr_has("tasks.md");
}

#[test]
fn a_spec_linking_outside_the_repository_never_reaches_a_prompt() {
    let repo = TestRepo::new();
    let spec = repo.path(&format!("{FEATURE}/spec.md"));
    std::fs::remove_file(&spec).expect("remove spec.md");
    std::os::unix::fs::symlink("/etc/passwd", &spec).expect("symlink");
    refused_in_time(&repo, &["approve", "spec"]).stderr_has("outside the repository");
    refused_in_time(&repo, &["run", "plan", "--no-input"])
        .stderr_has("resolves to /etc/passwd, outside the repository")
        .stderr_has("copy the file");
}

#[test]
fn a_spec_linking_inside_the_repository_is_read() {
    let repo = TestRepo::new();
    let spec = repo.path(&format!("{FEATURE}/spec.md"));
    std::fs::rename(&spec, repo.path("docs-spec.md")).expect("move spec.md");
    std::os::unix::fs::symlink("../../docs-spec.md", &spec).expect("symlink");
    repo.run(&["approve", "spec"]).expect_code(EXIT_DONE);
    repo.run_plan_to_gate();
}

#[test]
fn a_spec_over_ten_mebibytes_is_refused_before_any_agent_runs() {
    let repo = TestRepo::with_approved_spec();
    let spec = repo.path(&format!("{FEATURE}/spec.md"));
    let file = std::fs::OpenOptions::new()
        .append(true)
        .open(&spec)
        .expect("open spec.md");
    // 50 MB, the size of the report; sparse, so the test writes almost nothing.
    file.set_len(50_000_000).expect("grow spec.md");
    let started = std::time::Instant::now();
    refused_in_time(&repo, &["run", "plan", "--no-input"])
        .stderr_has("spec.md is too large")
        .stderr_has("10 MiB");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "refusing took {:?}",
        started.elapsed()
    );
    assert!(!repo.exists(".stagegate/runs") || repo.run_count() == 0);
}
