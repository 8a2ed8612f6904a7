//! Agents that fail, hang, or write too much or garbage: partial failure and quorum.

use std::time::Duration;

use serde_json::Value;

use crate::harness::{EXIT_DONE, EXIT_STAGE_FAILED, FEATURE, TestRepo, poll, process_alive};

/// The `status RUN --json` summary of one parallel agent.
fn agent_summary(status: &Value, agent: &str) -> Value {
    status["agents"]
        .as_array()
        .expect("status RUN --json has agents")
        .iter()
        .find(|summary| summary["agent"] == agent && summary["phase"] == "agent")
        .unwrap_or_else(|| panic!("no {agent} in {status:#}"))
        .clone()
}

fn failure_reason(status: &Value, agent: &str) -> String {
    let summary = agent_summary(status, agent);
    assert_ne!(
        summary["outcome"], "ok",
        "{agent} did not fail: {summary:#}"
    );
    summary["failure_reason"]
        .as_str()
        .unwrap_or_else(|| panic!("{agent} failed without a reason: {summary:#}"))
        .to_owned()
}

#[test]
fn one_failing_agent_of_four_still_reaches_the_gate_and_is_reported() {
    let repo = TestRepo::with_approved_spec().behaviour("estimation-scope-analyst", "fail-always");
    let run = repo.run_plan_to_gate();

    let status = repo.run_status(&run);
    let reason = failure_reason(&status, "estimation-scope-analyst");
    assert!(reason.contains("scripted failure"), "{reason}");
    assert_eq!(
        agent_summary(&status, "requirements-analyst")["outcome"],
        "ok"
    );

    let summary =
        std::fs::read_to_string(repo.run_dir(&run).join("plan/staged/planning-summary.md"))
            .expect("staged planning-summary.md");
    assert!(summary.contains("## Agent outcomes"), "{summary}");
    let line = summary
        .lines()
        .find(|line| line.starts_with("| estimation-scope-analyst |"))
        .unwrap_or_else(|| panic!("no outcome line for the agent:\n{summary}"));
    assert!(line.contains("failed"), "{line}");
    let line = summary
        .lines()
        .find(|line| line.starts_with("| requirements-analyst |"))
        .expect("requirements-analyst's outcome line");
    assert!(line.contains("succeeded"), "{line}");

    // The quorum held, so there was no sequential pass: just the retries (defaults: 2).
    let calls = repo.calls();
    assert_eq!(
        calls.of_agent("agent", "estimation-scope-analyst").len(),
        3,
        "{calls:#?}"
    );
    assert!(!repo.exists(&format!("{FEATURE}/plan.md")));
}

/// The `status --json` entry of run `run`.
fn run_entry(status: &Value, run: &str) -> Value {
    status["runs"]
        .as_array()
        .expect("status --json has runs")
        .iter()
        .find(|entry| entry["id"] == run)
        .unwrap_or_else(|| panic!("no run {run} in {status:#}"))
        .clone()
}

#[test]
fn status_without_a_run_shows_the_pending_gate_the_failed_agent_and_the_last_decision() {
    let repo = TestRepo::with_approved_spec()
        .behaviour("estimation-scope-analyst", "fail-always")
        // Fails once, then succeeds on its retry: not a failure.
        .behaviour("solution-architect", "fail 1");
    let run = repo.run_plan_to_gate();

    let reason = "fake agent estimation-scope-analyst: scripted failure on attempt 3";
    repo.run(&["status"])
        .expect_code(EXIT_DONE)
        .stdout_has(&format!("run {run}  awaiting_decision  feature {FEATURE}"))
        .stdout_has(&format!(
            "waiting: run {run} at the plan gate: Planning artifacts synthesized. Approve to proceed?"
        ))
        .stdout_has("artifacts: plan.md, planning-summary.md")
        .stdout_has(&format!("stagegate approve {run}"))
        .stdout_has(&format!("stagegate reject {run} --reason"))
        .stdout_has("partial failures:")
        // The reason, cut to one line (the fake agent's path makes it long).
        .stdout_has("plan estimation-scope-analyst: `")
        .stdout_has("fake-agent.sh` exited with code 1: fake agent");
    let listed = repo.run(&["status"]).expect_code(EXIT_DONE);
    assert!(
        !listed.stdout.contains("solution-architect"),
        "an agent that succeeded on its retry is listed as failed: {listed:?}"
    );
    assert!(!listed.stdout.contains("last decision"), "{listed:?}");

    let entry = run_entry(&repo.status(), &run);
    assert_eq!(entry["state"], "awaiting_decision", "{entry:#}");
    assert_eq!(entry["pending_gate"]["stage"], "plan", "{entry:#}");
    assert_eq!(
        entry["pending_gate"]["question"], "Planning artifacts synthesized. Approve to proceed?",
        "{entry:#}"
    );
    assert_eq!(
        entry["pending_gate"]["artifacts"],
        serde_json::json!(["plan.md", "planning-summary.md"]),
        "{entry:#}"
    );
    let failures = entry["partial_failures"]
        .as_array()
        .expect("partial_failures");
    assert_eq!(failures.len(), 1, "{entry:#}");
    assert_eq!(failures[0]["stage"], "plan");
    assert_eq!(failures[0]["agent"], "estimation-scope-analyst");
    let failure = failures[0]["reason"].as_str().expect("a reason");
    assert!(failure.contains(reason), "{failure}");
    assert!(entry["last_decision"].is_null(), "{entry:#}");

    repo.run(&["reject", &run, "--reason", "the storage section is missing"])
        .expect_code(EXIT_DONE);
    repo.run(&["status"])
        .expect_code(EXIT_DONE)
        .stdout_has(&format!("run {run}  rejected"))
        .stdout_has("last decision: plan reject by ")
        .stdout_has(": the storage section is missing");
    let listed = repo.run(&["status"]).expect_code(EXIT_DONE);
    assert!(!listed.stdout.contains("waiting: run"), "{listed:?}");

    let entry = run_entry(&repo.status(), &run);
    assert!(entry["pending_gate"].is_null(), "{entry:#}");
    let decision = &entry["last_decision"];
    assert_eq!(decision["stage"], "plan", "{entry:#}");
    assert_eq!(decision["kind"], "reject", "{entry:#}");
    assert_eq!(
        decision["reason"], "the storage section is missing",
        "{entry:#}"
    );
    assert!(decision["by"].is_string(), "{entry:#}");
    assert_eq!(entry["partial_failures"].as_array().map(Vec::len), Some(1));
}

#[test]
fn two_failing_agents_of_four_fail_the_stage_after_a_sequential_pass() {
    let repo = TestRepo::with_approved_spec()
        .behaviour("solution-architect", "fail-always")
        .behaviour("risk-compliance-analyst", "fail-always");
    let outcome = repo
        .run(&["run", "plan", "--no-input"])
        .expect_code(EXIT_STAGE_FAILED)
        .stderr_has("too few agents succeeded")
        .stderr_has("3 of 4 must succeed")
        .stderr_has("one at a time")
        .stderr_has("solution-architect")
        .stderr_has("risk-compliance-analyst");
    let run = outcome.run_id();

    let calls = repo.calls();
    assert!(calls.phase("review").is_empty(), "a review ran: {calls:#?}");
    for agent in ["solution-architect", "risk-compliance-analyst"] {
        let attempts = calls.of_agent("agent", agent);
        // Retries 2 → 3 attempts in parallel, then one more alone.
        assert_eq!(attempts.len(), 4, "{agent}: {calls:#?}");
        let sequential = attempts[3];
        assert_eq!(sequential.key.attempt, 4);
        let others: Vec<_> = calls
            .0
            .iter()
            .filter(|call| call.key != sequential.key)
            .collect();
        for other in others {
            let apart = other.end() <= sequential.start || sequential.end() <= other.start;
            assert!(
                apart,
                "{agent}'s sequential attempt overlaps {:?}: {calls:#?}",
                other.key
            );
        }
    }
    // The other two agents are not asked again.
    assert_eq!(calls.of_agent("agent", "requirements-analyst").len(), 1);

    let status = repo.run_status(&run);
    assert_eq!(status["run"]["state"], "failed", "{status:#}");
    failure_reason(&status, "solution-architect");
    failure_reason(&status, "risk-compliance-analyst");
    assert!(
        status["gates"]
            .as_array()
            .is_none_or(|gates| gates.is_empty())
    );
}

#[test]
fn a_hung_agent_is_killed_with_its_grandchild_and_the_run_goes_on() {
    let repo = TestRepo::with_approved_spec()
        .set("timeouts", "simple_check", "\"1s\"")
        .set(
            "agents.solution-architect",
            "timeout_class",
            "\"simple_check\"",
        )
        .set("agents.solution-architect", "retries", "0")
        .behaviour("solution-architect", "hang");
    let run = repo.run_plan_to_gate();

    let grandchild = repo.wait_for_pid("solution-architect.grandchild.pid");
    let gone = poll(Duration::from_secs(5), || {
        (!process_alive(grandchild)).then_some(())
    });
    if gone.is_none() {
        // Do not leave it behind for the next test run.
        let _ = std::process::Command::new("kill")
            .args(["-9", &grandchild.to_string()])
            .status();
        panic!("the hung agent's grandchild {grandchild} is still running");
    }

    let calls = repo.calls();
    let hung = calls.of_agent("agent", "solution-architect");
    assert_eq!(hung.len(), 1, "retries = 0: {calls:#?}");
    assert!(hung[0].end.is_none(), "the hung agent finished: {calls:#?}");
    let reason = failure_reason(&repo.run_status(&run), "solution-architect");
    assert!(reason.contains("timed out"), "{reason}");
}

#[test]
fn an_agent_writing_past_the_output_cap_fails_and_the_run_goes_on() {
    let repo = TestRepo::with_approved_spec().behaviour("risk-compliance-analyst", "huge");
    let run = repo.run_plan_to_gate();
    let status = repo.run_status(&run);
    let reason = failure_reason(&status, "risk-compliance-analyst");
    assert!(reason.contains("output exceeded"), "{reason}");
    // A permanent failure: not retried.
    assert_eq!(
        agent_summary(&status, "risk-compliance-analyst")["attempts"],
        1
    );
}

#[test]
fn an_agent_writing_bytes_that_are_not_utf8_fails_and_the_run_goes_on() {
    let repo = TestRepo::with_approved_spec().behaviour("estimation-scope-analyst", "binary");
    let run = repo.run_plan_to_gate();
    let reason = failure_reason(&repo.run_status(&run), "estimation-scope-analyst");
    assert!(reason.contains("UTF-8"), "{reason}");
}

#[test]
fn a_command_backend_whose_program_does_not_exist_fails_the_stage_clearly() {
    let repo = TestRepo::with_approved_spec().set(
        "backends.fake",
        "command",
        "[\"stagegate-test-no-such-program\"]",
    );
    let outcome = repo
        .run(&["run", "plan", "--no-input"])
        .expect_code(EXIT_STAGE_FAILED)
        .stderr_has("stagegate-test-no-such-program")
        .stderr_has("not found");
    let status = repo.run_status(&outcome.run_id());
    let reason = failure_reason(&status, "requirements-analyst");
    assert!(reason.contains("not found"), "{reason}");
    assert!(
        repo.calls().0.is_empty(),
        "the missing program logged calls"
    );
}

#[test]
fn ctrl_c_stops_the_agents_and_the_run_can_be_resumed() {
    let mut repo = TestRepo::with_approved_spec();
    for agent in crate::harness::PLAN_AGENTS {
        repo = repo.behaviour(agent, "hang");
    }
    let mut child = repo.spawn(&["run", "plan", "--no-input"]);
    // Wait until three agents (the stage's concurrency) are running.
    let started = poll(Duration::from_secs(20), || {
        let pids: Vec<u32> = crate::harness::PLAN_AGENTS
            .iter()
            .filter_map(|agent| {
                std::fs::read_to_string(repo.fake_dir.join(format!("{agent}.grandchild.pid")))
                    .ok()?
                    .trim()
                    .parse()
                    .ok()
            })
            .collect();
        (pids.len() == 3).then_some(pids)
    });
    let Some(grandchildren) = started else {
        let _ = child.kill();
        panic!("the agents did not start");
    };
    let interrupt = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill -INT");
    assert!(interrupt.success());
    let exited = poll(Duration::from_secs(20), || child.try_wait().ok().flatten());
    let Some(status) = exited else {
        let _ = child.kill();
        panic!("stagegate did not stop on SIGINT");
    };
    let output = child.wait_with_output().expect("output");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !status.success() && status.code() != Some(10),
        "{status:?}\n{stderr}"
    );
    let run = stderr
        .lines()
        .find_map(|line| line.strip_prefix("run ")?.split_whitespace().next())
        .expect("the run id on stderr")
        .to_owned();
    assert!(
        stderr.contains(&format!("stagegate resume {run}")),
        "{stderr}"
    );
    for pid in grandchildren {
        let gone = poll(Duration::from_secs(5), || {
            (!process_alive(pid)).then_some(())
        });
        assert!(gone.is_some(), "agent grandchild {pid} survived Ctrl-C");
    }
    assert_eq!(repo.run_status(&run)["run"]["state"], "interrupted");

    // The agents behave now; the run picks up where it stopped.
    for agent in crate::harness::PLAN_AGENTS {
        std::fs::remove_file(repo.fake_dir.join(format!("{agent}.behaviour")))
            .expect("remove a behaviour");
    }
    repo.run(&["resume", &run, "--no-input"])
        .expect_code(crate::harness::EXIT_AWAITING_DECISION);
    assert!(repo.run_dir(&run).join("plan/staged/plan.md").is_file());
}
