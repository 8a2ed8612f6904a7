//! Two deciders, one gate: whoever commits first decides, the other is refused with exit 6 and
//! changes nothing. Through the real binary, many times each: approve vs reject, approve vs
//! approve, and a terminal gate (in a pseudo-terminal, through `script`) vs a command.

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::harness::{
    EXIT_ALREADY_DECIDED, EXIT_DONE, EXIT_REJECTED, FEATURE, Outcome, TestRepo, wait_for_exit,
    wait_until,
};

const ITERATIONS: usize = 12;
const WAIT: Duration = Duration::from_secs(60);

/// A repository whose agents are the built-in analysts: a plan stage takes milliseconds, so
/// each iteration is a fresh run at its gate.
fn fast_repo() -> TestRepo {
    TestRepo::with_approved_spec().set("defaults", "backend", "\"builtin\"")
}

/// The decisions `status RUN --json` lists, by kind.
fn decision_kinds(repo: &TestRepo, run: &str) -> Vec<String> {
    repo.run_status(run)["decisions"]
        .as_array()
        .expect("status RUN --json has decisions")
        .iter()
        .map(|decision| decision["kind"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// The artifacts in the feature directory besides the inputs, and any temporary file.
fn feature_files(repo: &TestRepo) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(repo.path(FEATURE))
        .expect("the feature directory")
        .map(|entry| {
            entry
                .expect("an entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name != "spec.md" && name != "tasks.md")
        .collect();
    names.sort();
    names
}

fn remove_published(repo: &TestRepo) {
    for name in feature_files(repo) {
        std::fs::remove_file(repo.path(&format!("{FEATURE}/{name}"))).expect("remove");
    }
}

/// Starts two deciders of `run` at once and returns their outcomes.
fn race(repo: &TestRepo, first: &[&str], second: &[&str]) -> (Outcome, Outcome) {
    let one = repo.spawn(first);
    let two = repo.spawn(second);
    (
        wait_for_exit(one, first, WAIT),
        wait_for_exit(two, second, WAIT),
    )
}

#[test]
fn approve_against_reject_has_exactly_one_winner_and_a_rejection_never_publishes() {
    let repo = fast_repo();
    let mut winners = Vec::new();
    for iteration in 0..ITERATIONS {
        remove_published(&repo);
        let run = repo.run_plan_to_gate();
        let approve = ["approve", run.as_str()];
        let reject = ["reject", run.as_str(), "--reason", "not this plan"];
        // Alternate who starts first, so that both orders are tried.
        let (approved, rejected) = if iteration % 2 == 0 {
            race(&repo, &approve, &reject)
        } else {
            let (rejected, approved) = race(&repo, &reject, &approve);
            (approved, rejected)
        };
        let kinds = decision_kinds(&repo, &run);
        assert_eq!(kinds.len(), 1, "iteration {iteration}: {kinds:?}");
        let state = repo.run_status(&run)["run"]["state"].clone();
        match kinds[0].as_str() {
            "approve" => {
                approved.expect_code(EXIT_DONE);
                rejected
                    .expect_code(EXIT_ALREADY_DECIDED)
                    .stderr_has("already approved");
                assert!(feature_files(&repo).contains(&"plan.md".to_owned()));
            }
            "reject" => {
                rejected.expect_code(EXIT_DONE);
                approved
                    .expect_code(EXIT_ALREADY_DECIDED)
                    .stderr_has("already rejected")
                    .stderr_has("not this plan");
                assert_eq!(feature_files(&repo), Vec::<String>::new(), "{state}");
                assert_eq!(state, Value::from("rejected"));
            }
            other => panic!("unexpected decision {other}"),
        }
        assert!(
            !feature_files(&repo)
                .iter()
                .any(|name| name.starts_with(".stagegate-tmp")),
            "a temporary file was left: {:?}",
            feature_files(&repo)
        );
        winners.push(kinds[0].clone());
    }
    eprintln!("winners: {winners:?}");
}

#[test]
fn two_approvals_of_one_gate_publish_once_and_the_second_is_refused() {
    let repo = fast_repo();
    for iteration in 0..ITERATIONS {
        let run = repo.run_plan_to_gate();
        let approve = ["approve", run.as_str()];
        let (one, two) = race(&repo, &approve, &approve);
        let mut codes = [one.code, two.code];
        codes.sort_unstable();
        assert_eq!(
            codes,
            [EXIT_DONE, EXIT_ALREADY_DECIDED],
            "iteration {iteration}:\n{one:?}\n{two:?}"
        );
        assert_eq!(decision_kinds(&repo, &run), ["approve"]);
    }
}

/// `stagegate run plan` at its terminal prompt, in a pseudo-terminal made by `script`; what is
/// written to its stdin reaches the prompt as keys.
struct TerminalRun {
    child: std::process::Child,
}

impl TerminalRun {
    fn start(repo: &TestRepo) -> TerminalRun {
        let binary = assert_cmd::cargo::cargo_bin("stagegate");
        let mut command = Command::new("script");
        command
            .args([
                "-qfec",
                &format!("{} run plan", binary.display()),
                "/dev/null",
            ])
            .current_dir(&repo.root)
            .env("NO_COLOR", "1")
            .env("TERM", "dumb")
            .env_remove("SPECIFY_FEATURE_DIRECTORY")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("STAGEGATE_") {
                command.env_remove(&name);
            }
        }
        let child = command
            .spawn()
            .expect("`script` (util-linux) runs stagegate in a pseudo-terminal");
        TerminalRun { child }
    }

    /// Presses Enter at the prompt: the highlighted choice, approve.
    fn press_enter(&mut self) {
        let stdin = self.child.stdin.as_mut().expect("script's stdin");
        stdin.write_all(b"\r").expect("write to the terminal");
        stdin.flush().expect("flush");
    }

    fn wait(self) -> Outcome {
        wait_for_exit(self.child, &["run", "plan"], WAIT)
    }
}

/// The run waiting at a pending gate, once there is one.
fn pending_run(repo: &TestRepo) -> String {
    wait_until(WAIT, "a run waiting at its gate", || {
        let status = repo.try_status()?;
        status["runs"].as_array()?.iter().find_map(|run| {
            run["pending_gate"]
                .is_object()
                .then(|| run["id"].as_str().unwrap_or_default().to_owned())
        })
    })
}

#[test]
fn a_terminal_gate_follows_a_decision_taken_meanwhile_in_another_process() {
    let repo = fast_repo();
    for iteration in 0..6 {
        remove_published(&repo);
        let mut terminal = TerminalRun::start(&repo);
        let run = pending_run(&repo);
        if iteration % 2 == 0 {
            // Another terminal rejects; then the person presses Enter (approve) here.
            repo.run(&["reject", &run, "--reason", "rejected elsewhere"])
                .expect_code(EXIT_DONE);
            terminal.press_enter();
            let outcome = terminal.wait();
            assert_eq!(
                outcome.code, EXIT_REJECTED,
                "iteration {iteration}: {outcome:?}"
            );
            assert!(outcome.stdout.contains("already rejected"), "{outcome:?}");
            assert_eq!(feature_files(&repo), Vec::<String>::new());
            assert_eq!(decision_kinds(&repo, &run), ["reject"]);
        } else {
            // The person approves here first; a late rejection is refused.
            terminal.press_enter();
            let outcome = terminal.wait();
            assert_eq!(
                outcome.code, EXIT_DONE,
                "iteration {iteration}: {outcome:?}"
            );
            repo.run(&["reject", &run, "--reason", "too late"])
                .expect_code(EXIT_ALREADY_DECIDED)
                .stderr_has("already approved");
            assert!(feature_files(&repo).contains(&"plan.md".to_owned()));
            assert_eq!(decision_kinds(&repo, &run), ["approve"]);
        }
    }
}
