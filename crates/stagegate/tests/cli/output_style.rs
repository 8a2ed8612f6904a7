//! What stagegate says on a terminal's behalf: colour only where a person reads (honouring
//! `NO_COLOR`, `CLICOLOR`, `CLICOLOR_FORCE`), never in `--json`; `-q` and `-v`; readable tables;
//! `--concurrency 0` refused with a reason.
//!
//! stderr and stdout are pipes here, so colour appears only when forced: the harness sets
//! `NO_COLOR=1` for every command, and these tests clear it (an empty `NO_COLOR` counts as
//! unset) where they want colour.

use crate::harness::{EXIT_AWAITING_DECISION, EXIT_DONE, EXIT_USAGE, TestRepo};

const ESC: char = '\u{1b}';
const FORCE_COLOUR: &[(&str, &str)] = &[("NO_COLOR", ""), ("CLICOLOR_FORCE", "1")];

#[test]
fn forced_colour_marks_progress_and_states_but_never_json() {
    let repo = TestRepo::with_approved_spec();
    let run = repo
        .run_with_env(&["run", "plan", "--no-input"], FORCE_COLOUR)
        .expect_code(EXIT_AWAITING_DECISION);
    assert!(run.stderr.contains(&format!("{ESC}[32m✓")), "{run:?}");
    let run_id = run.run_id();

    let status = repo
        .run_with_env(&["status"], FORCE_COLOUR)
        .expect_code(EXIT_DONE);
    assert!(status.stdout.contains(ESC), "{status:?}");
    let detail = repo
        .run_with_env(&["status", &run_id], FORCE_COLOUR)
        .expect_code(EXIT_DONE);
    assert!(
        detail.stdout.contains(&format!("{ESC}[32mok")),
        "{detail:?}"
    );
    let runs = repo
        .run_with_env(&["runs"], FORCE_COLOUR)
        .expect_code(EXIT_DONE);
    assert!(runs.stdout.contains(ESC), "{runs:?}");

    for args in [
        &["status", "--json"][..],
        &["status", &run_id, "--json"],
        &["runs", "--json"],
        &["metrics", "--format", "json"],
    ] {
        let outcome = repo.run_with_env(args, FORCE_COLOUR).expect_code(EXIT_DONE);
        assert!(!outcome.stdout.contains(ESC), "{outcome:?}");
    }
    let events = repo
        .run_with_env(&["run", "plan", "--no-input", "--json"], FORCE_COLOUR)
        .expect_code(EXIT_AWAITING_DECISION);
    assert!(!events.stdout.contains(ESC), "{events:?}");
}

#[test]
fn no_color_wins_and_clicolor_0_turns_colour_off() {
    let repo = TestRepo::with_approved_spec();
    repo.run_plan_to_gate();
    for environment in [
        &[("NO_COLOR", "1"), ("CLICOLOR_FORCE", "1")][..],
        &[("NO_COLOR", ""), ("CLICOLOR", "0")],
        // A pipe without any variable: plain.
        &[("NO_COLOR", "")],
    ] {
        let status = repo
            .run_with_env(&["status"], environment)
            .expect_code(EXIT_DONE);
        assert!(!status.stdout.contains(ESC), "{environment:?}: {status:?}");
        let error = repo
            .run_with_env(&["show", "no-such-run"], environment)
            .expect_code(EXIT_USAGE);
        assert!(!error.stderr.contains(ESC), "{environment:?}: {error:?}");
    }
}

#[test]
fn an_error_is_red_when_colour_is_forced() {
    let repo = TestRepo::with_approved_spec();
    repo.run_plan_to_gate();
    let error = repo
        .run_with_env(&["show", "no-such-run"], FORCE_COLOUR)
        .expect_code(EXIT_USAGE);
    assert!(error.stderr.starts_with(&format!("{ESC}[")), "{error:?}");
    assert!(error.stderr.contains("error:"), "{error:?}");
}

#[test]
fn quiet_keeps_only_what_a_person_must_act_on() {
    let repo = TestRepo::with_approved_spec();
    let run = repo
        .run(&["-q", "run", "plan", "--no-input"])
        .expect_code(EXIT_AWAITING_DECISION);
    assert!(!run.stderr.contains('✓'), "no progress under -q: {run:?}");
    // The gate's question and how to decide it remain.
    run.stderr_has("Approve to proceed?")
        .stderr_has("stagegate approve");
    let approve = repo.run(&["approve", "-q"]).expect_code(EXIT_DONE);
    assert_eq!(approve.stderr, "", "{approve:?}");
}

#[test]
fn verbose_shows_every_attempt_starting_and_the_settings_files() {
    let repo = TestRepo::with_approved_spec();
    let run = repo
        .run(&["run", "plan", "--no-input", "-v"])
        .expect_code(EXIT_AWAITING_DECISION);
    let run = run
        .stderr_has("· agent     requirements-analyst (attempt 1, fake)")
        .stderr_has("settings: built-in defaults < ");
    assert!(run.stderr.contains("stagegate.toml"), "{run:?}");
    repo.run(&["-q", "-v", "status"]).expect_code(EXIT_USAGE);
}

#[test]
fn concurrency_0_is_refused_with_a_reason() {
    let repo = TestRepo::new();
    let outcome = repo
        .run(&["run", "plan", "--no-input", "--concurrency", "0"])
        .expect_code(EXIT_USAGE)
        .stderr_has("at least one agent must run at once; give 1 to run them one at a time");
    assert!(!outcome.stderr.contains("stagegate::"), "{outcome:?}");
    assert!(!repo.exists(".stagegate"), "nothing ran");
    repo.run(&["run", "plan", "--no-input", "--concurrency", "many"])
        .expect_code(EXIT_USAGE)
        .stderr_has("expected a whole number of parallel agents such as 3, not `many`");
}

#[test]
fn tables_keep_columns_apart_whatever_the_feature_name() {
    let repo = TestRepo::with_approved_spec();
    let long_feature = "specs/002-a-feature-whose-name-is-much-longer-than-any-column-width";
    std::fs::create_dir_all(repo.path(long_feature)).expect("create the feature");
    std::fs::copy(
        repo.path("specs/001-demo/spec.md"),
        repo.path(&format!("{long_feature}/spec.md")),
    )
    .expect("copy the spec");
    repo.run(&["approve", "spec", "--feature", long_feature])
        .expect_code(EXIT_DONE);
    repo.run(&["run", "plan", "--no-input", "--feature", long_feature])
        .expect_code(EXIT_AWAITING_DECISION);
    repo.run(&["run", "plan", "--no-input", "--feature", "specs/001-demo"])
        .expect_code(EXIT_AWAITING_DECISION);
    let runs = repo.run(&["runs"]).expect_code(EXIT_DONE);
    let lines: Vec<&str> = runs.stdout.lines().collect();
    let header = lines[0];
    let column = |name: &str| header.find(name).expect("a column of the header");
    for line in &lines[1..] {
        // Every row has its state and its start time where the header says, after two spaces.
        for name in ["state", "started"] {
            let at = column(name);
            assert!(
                line[..at].ends_with("  "),
                "{name} in {line:?}:\n{}",
                runs.stdout
            );
            assert!(
                !line[at..].starts_with(' '),
                "{name} in {line:?}:\n{}",
                runs.stdout
            );
        }
    }
}
