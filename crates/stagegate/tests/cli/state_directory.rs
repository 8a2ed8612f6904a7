//! Where `.stagegate/` comes from: the commands that only read create nothing in a repository
//! that has none (they report no runs), and `stagegate init` keeps it out of git.

use crate::harness::{EXIT_DONE, EXIT_USAGE, TestRepo};

#[test]
fn read_only_commands_report_no_runs_and_create_nothing() {
    let repo = TestRepo::new();
    assert!(!repo.exists(".stagegate"));

    repo.run(&["status"])
        .expect_code(EXIT_DONE)
        .stdout_has("no runs yet");
    repo.run(&["runs"])
        .expect_code(EXIT_DONE)
        .stdout_has("no runs yet");
    for args in [&["status", "--json"][..], &["runs", "--json"][..]] {
        let outcome = repo.run(args).expect_code(EXIT_DONE);
        assert_eq!(outcome.json()["runs"], serde_json::json!([]), "{outcome:?}");
    }
    let metrics = repo.run(&["metrics"]).expect_code(EXIT_DONE);
    assert_eq!(metrics.json()["runs"], 0, "{metrics:?}");
    repo.run(&["metrics", "--format", "prometheus"])
        .expect_code(EXIT_DONE)
        .stdout_has("stagegate_runs 0");
    // A run that cannot exist is an unknown run, as in a repository with runs: no page is
    // written for `report`.
    repo.run(&["show", "20260101-000000-abcd"])
        .expect_code(EXIT_USAGE)
        .stderr_has("no runs yet");
    repo.run(&["report", "20260101-000000-abcd", "--html", "report.html"])
        .expect_code(EXIT_USAGE)
        .stderr_has("no runs yet");

    assert!(
        !repo.exists(".stagegate"),
        "a read-only command created .stagegate/"
    );
    assert!(!repo.exists("report.html"));
}

#[test]
fn read_only_commands_still_read_a_store_that_exists() {
    let repo = TestRepo::with_approved_spec();
    assert!(repo.exists(".stagegate"));
    repo.run(&["runs"])
        .expect_code(EXIT_DONE)
        .stdout_has("no runs yet");
    let run_id = repo.run_plan_to_gate();
    repo.run(&["runs"])
        .expect_code(EXIT_DONE)
        .stdout_has(&run_id);
    repo.run(&["status"])
        .expect_code(EXIT_DONE)
        .stdout_has(&run_id);
}

#[test]
fn init_ignores_the_state_directory_once() {
    let repo = TestRepo::new();
    std::fs::remove_file(repo.path("stagegate.toml")).expect("start without a configuration");

    repo.run(&["init"])
        .expect_code(EXIT_DONE)
        .stderr_has("wrote .gitignore");
    assert_eq!(repo.read(".gitignore"), ".stagegate/\n");

    // Again (--force for the configuration): the line is not added twice.
    repo.run(&["init", "--force"]).expect_code(EXIT_DONE);
    assert_eq!(repo.read(".gitignore"), ".stagegate/\n");
    assert!(!repo.exists(".stagegate"), "init created .stagegate/");

    let git = std::process::Command::new("git")
        .args(["check-ignore", "-q", ".stagegate/state.db"])
        .current_dir(&repo.root)
        .status()
        .expect("git is installed");
    assert!(git.success(), "git does not ignore .stagegate/");
}

#[test]
fn init_appends_to_an_existing_gitignore_after_its_last_line() {
    let repo = TestRepo::new();
    std::fs::remove_file(repo.path("stagegate.toml")).expect("start without a configuration");
    repo.write(".gitignore", "target/\n*.log");

    repo.run(&["init"])
        .expect_code(EXIT_DONE)
        .stderr_has("added .stagegate/ to .gitignore");
    assert_eq!(repo.read(".gitignore"), "target/\n*.log\n.stagegate/\n");

    let repo = TestRepo::new();
    std::fs::remove_file(repo.path("stagegate.toml")).expect("start without a configuration");
    repo.write(".gitignore", "/.stagegate\n");
    repo.run(&["init"]).expect_code(EXIT_DONE);
    assert_eq!(repo.read(".gitignore"), "/.stagegate\n");
}
