//! A stage up to its gate, and the gate's decisions from other processes: approve, reject,
//! modify with feedback, resume.

use serde_json::Value;

use crate::harness::{
    EXIT_AWAITING_DECISION, EXIT_DONE, EXIT_REJECTED, EXIT_USAGE, FEATURE, PLAN_AGENTS, TestRepo,
};

/// The decisions `status RUN --json` lists, as (kind, the whole record).
fn decisions(status: &Value) -> Vec<(String, Value)> {
    status["decisions"]
        .as_array()
        .expect("status RUN --json has decisions")
        .iter()
        .map(|decision| {
            (
                decision["kind"].as_str().unwrap_or_default().to_owned(),
                decision.clone(),
            )
        })
        .collect()
}

fn gate_state(status: &Value, stage: &str) -> String {
    status["gates"]
        .as_array()
        .expect("status RUN --json has gates")
        .iter()
        .find(|gate| gate["stage"] == stage)
        .and_then(|gate| gate["state"].as_str())
        .unwrap_or_else(|| panic!("no {stage} gate in {status:#}"))
        .to_owned()
}

#[test]
fn a_plan_run_stops_at_its_gate_and_approving_publishes_the_artifacts() {
    let repo = TestRepo::with_approved_spec();
    let outcome = repo
        .run(&["run", "plan", "--no-input"])
        .expect_code(EXIT_AWAITING_DECISION);
    let run = outcome.run_id();
    outcome
        // Plain progress lines: stderr is not a terminal.
        .stderr_has("Stage A: Planning/Spec (plan): 4 agents")
        .stderr_has("requirements-analyst")
        .stderr_has("Planning artifacts synthesized. Approve to proceed?")
        .stderr_has(&format!("stagegate approve {run}"))
        .stderr_has(&format!("stagegate reject {run} --reason"))
        .stderr_has(&format!("stagegate modify {run} --feedback"));

    // Staged in the run directory, not yet in the feature directory.
    let run_dir = repo.run_dir(&run);
    for artifact in ["plan.md", "planning-summary.md"] {
        assert!(
            run_dir.join("plan/staged").join(artifact).is_file(),
            "{artifact} is not staged"
        );
        assert!(
            !repo.exists(&format!("{FEATURE}/{artifact}")),
            "{artifact} was published before the gate was decided"
        );
    }
    // Every call's prompt and output are kept.
    for agent in PLAN_AGENTS {
        let prompt = repo
            .attempt_text(&run, "plan", agent, 1, "prompt")
            .expect("a prompt");
        assert!(!prompt.trim().is_empty(), "{agent}'s prompt is empty");
        let output = repo
            .attempt_text(&run, "plan", agent, 1, "output")
            .expect("an output");
        assert!(
            output.contains(&format!("fake agent {agent}")),
            "{agent}'s recorded output is not its output: {output}"
        );
    }
    for agent in [
        "lead-reviewer-a",
        "lead-synthesizer-a.plan.md",
        "lead-synthesizer-a.planning-summary.md",
        "main-agent",
    ] {
        for kind in ["prompt", "output"] {
            assert!(
                repo.attempt_text(&run, "plan", agent, 1, kind).is_some(),
                "{agent}'s attempt 1 recorded no {kind}"
            );
        }
    }
    // `CONFIDENCE: 0.9` in an output is recorded as its confidence.
    let status = repo.run_status(&run);
    let confidences: Vec<_> = status["agents"]
        .as_array()
        .expect("agents")
        .iter()
        .filter(|agent| agent["phase"] == "agent")
        .map(|agent| agent["confidence"].as_f64())
        .collect();
    assert_eq!(confidences, vec![Some(0.9); 4], "{status:#}");
    let pending = &repo.status()["runs"][0]["pending_gate"];
    assert_eq!(pending["stage"], "plan", "{pending:#}");

    let staged_plan = std::fs::read_to_string(run_dir.join("plan/staged/plan.md")).expect("plan");
    repo.run(&["approve"])
        .expect_code(EXIT_DONE)
        .stdout_has(&format!("{FEATURE}/plan.md"))
        .stdout_has(&format!("{FEATURE}/planning-summary.md"));
    assert_eq!(repo.read(&format!("{FEATURE}/plan.md")), staged_plan);
    assert!(
        repo.read(&format!("{FEATURE}/planning-summary.md"))
            .contains("## Agent outcomes")
    );
    let status = repo.run_status(&run);
    assert_eq!(gate_state(&status, "plan"), "approved");
    assert_eq!(status["run"]["state"], "completed", "{status:#}");
    assert!(repo.status()["runs"][0]["pending_gate"].is_null());
}

#[test]
fn json_mode_prints_one_event_per_line_with_the_commands_at_the_gate() {
    let repo = TestRepo::with_approved_spec();
    let outcome = repo
        .run(&["run", "plan", "--no-input", "--json"])
        .expect_code(EXIT_AWAITING_DECISION);
    assert!(
        !outcome.stderr.contains("Stage A: Planning/Spec (plan)"),
        "progress lines with --json: {outcome:?}"
    );
    let events = outcome.json_lines();
    let kinds: Vec<&str> = events
        .iter()
        .map(|event| event["event"].as_str().expect("each event names its kind"))
        .collect();
    assert_eq!(kinds.first(), Some(&"run_started"), "{kinds:?}");
    for kind in [
        "stage_started",
        "attempt_started",
        "attempt_finished",
        "qa_verdict",
        "gate_requested",
    ] {
        assert!(kinds.contains(&kind), "no {kind} event in {kinds:?}");
    }
    let waiting = events
        .iter()
        .find(|event| event["event"] == "gate_waiting")
        .expect("a gate_waiting event");
    let run = waiting["run_id"].as_str().expect("run_id").to_owned();
    assert_eq!(waiting["stage"], "plan");
    let commands: Vec<&str> = waiting["commands"]
        .as_array()
        .expect("commands")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        commands.contains(&format!("stagegate approve {run}").as_str()),
        "{commands:?}"
    );
    assert!(
        commands
            .iter()
            .any(|command| command.starts_with(&format!("stagegate reject {run}"))),
        "{commands:?}"
    );
    assert!(repo.run_dir(&run).join("plan/staged/plan.md").is_file());
}

#[test]
fn a_rejection_needs_a_reason_keeps_it_and_publishes_nothing() {
    let repo = TestRepo::with_approved_spec();
    let run = repo.run_plan_to_gate();

    repo.run(&["reject"]).expect_code(EXIT_USAGE);
    repo.run(&["reject", "--reason", "  "])
        .expect_code(EXIT_USAGE)
        .stderr_has("reason");
    assert_eq!(gate_state(&repo.run_status(&run), "plan"), "pending");

    repo.run(&["reject", "--reason", "too vague"])
        .expect_code(EXIT_DONE);
    let status = repo.run_status(&run);
    assert_eq!(gate_state(&status, "plan"), "rejected");
    assert_eq!(status["run"]["state"], "rejected", "{status:#}");
    let rejections: Vec<_> = decisions(&status)
        .into_iter()
        .filter(|(kind, _)| kind == "reject")
        .collect();
    assert_eq!(rejections.len(), 1, "{status:#}");
    assert_eq!(rejections[0].1["reason"], "too vague");
    for artifact in ["plan.md", "planning-summary.md"] {
        assert!(!repo.exists(&format!("{FEATURE}/{artifact}")));
    }
    // A rejected run ends with exit 4 when resumed.
    repo.run(&["resume", &run, "--no-input"])
        .expect_code(EXIT_REJECTED);
    // A decided gate cannot be approved any more.
    assert_ne!(repo.run(&["approve", &run]).code, EXIT_DONE);
    assert!(!repo.exists(&format!("{FEATURE}/plan.md")));
}

#[test]
fn modify_with_feedback_reworks_through_the_synthesizer_and_records_the_diff() {
    let repo = TestRepo::with_approved_spec();
    let run = repo.run_plan_to_gate();
    let staged = repo.run_dir(&run).join("plan/staged/plan.md");
    let before = std::fs::read_to_string(&staged).expect("staged plan.md");

    repo.run(&[
        "modify",
        &run,
        "--feedback",
        "add a rollout section",
        "--no-input",
    ])
    .expect_code(EXIT_AWAITING_DECISION)
    .stderr_has(&format!("stagegate approve {run}"));

    // The synthesizer was asked again, with the feedback in its prompt, and only it and QA.
    let calls = repo.calls();
    assert_eq!(calls.synthesis_of("plan.md").len(), 2, "{calls:#?}");
    assert_eq!(
        calls.phase("agent").len(),
        4,
        "the agents ran again: {calls:#?}"
    );
    assert_eq!(calls.phase("review").len(), 1, "the review ran again");
    assert_eq!(calls.phase("qa").len(), 2, "QA did not check the rework");
    let synthesizer = "lead-synthesizer-a.plan.md";
    let prompts: Vec<String> = repo
        .attempts(&run)
        .into_iter()
        .filter(|row| row.agent == synthesizer)
        .filter_map(|row| repo.attempt_text(&run, "plan", synthesizer, row.attempt, "prompt"))
        .collect();
    assert!(
        prompts
            .iter()
            .any(|prompt| prompt.contains("add a rollout section")),
        "no synthesis prompt of {synthesizer} carries the feedback: {prompts:#?}"
    );

    let after = std::fs::read_to_string(&staged).expect("staged plan.md");
    assert_ne!(after, before, "the rework did not change plan.md");
    let status = repo.run_status(&run);
    assert_eq!(gate_state(&status, "plan"), "pending");
    let modifications: Vec<_> = decisions(&status)
        .into_iter()
        .filter(|(kind, _)| kind == "modify")
        .collect();
    assert_eq!(modifications.len(), 1, "{status:#}");
    let modification = &modifications[0].1;
    let diff = modification["diff"].as_str().unwrap_or_default();
    assert!(diff.contains("plan.md"), "{modification:#}");
    assert!(
        diff.lines()
            .any(|line| line.starts_with('+') && !line.starts_with("+++")),
        "{modification:#}"
    );
    assert!(
        modification.to_string().contains("add a rollout section"),
        "the feedback is not recorded with the modification: {modification:#}"
    );

    repo.run(&["approve"]).expect_code(EXIT_DONE);
    assert_eq!(repo.read(&format!("{FEATURE}/plan.md")), after);
}

/// PRODUCT.md §2: the run keeps every agent's output of every attempt, the review, each
/// synthesis. A rework that started the synthesizer's and QA's attempt numbers at 1 again
/// would overwrite the first synthesis's attempt 1 with the rework's.
#[test]
fn a_rework_keeps_the_first_synthesis_in_the_run_directory() {
    let repo = TestRepo::with_approved_spec();
    let run = repo.run_plan_to_gate();
    let first_synthesis = || {
        repo.attempt_text(&run, "plan", "lead-synthesizer-a.plan.md", 1, "output")
            .expect("the first synthesis's output")
    };
    let first_output = first_synthesis();
    repo.run(&[
        "modify",
        &run,
        "--feedback",
        "add a rollout section",
        "--no-input",
    ])
    .expect_code(EXIT_AWAITING_DECISION);
    assert_eq!(
        first_synthesis(),
        first_output,
        "the first synthesis's output was overwritten"
    );
    let calls = repo.calls();
    let attempts: Vec<u32> = calls
        .synthesis_of("plan.md")
        .iter()
        .map(|call| call.key.attempt)
        .collect();
    assert_eq!(attempts, vec![1, 2], "{calls:#?}");
}

#[test]
fn resume_after_an_approval_from_another_process_runs_the_next_stage() {
    let repo = TestRepo::with_approved_spec();
    let outcome = repo
        .run(&["run", "plan", "prep", "--no-input"])
        .expect_code(EXIT_AWAITING_DECISION)
        .stderr_has("Planning artifacts synthesized. Approve to proceed?");
    let run = outcome.run_id();
    assert!(repo.calls().0.iter().all(|call| call.key.stage == "plan"));

    repo.run(&["approve"])
        .expect_code(EXIT_DONE)
        .stderr_has(&format!("stagegate resume {run}"));
    assert!(repo.exists(&format!("{FEATURE}/plan.md")));

    repo.run(&["resume", &run, "--no-input"])
        .expect_code(EXIT_AWAITING_DECISION)
        .stderr_has("Implementation plan ready. Approve to proceed?")
        .stderr_has(&format!("stagegate approve {run}"));
    let calls = repo.calls();
    // Plan's work is not redone; prep's agents ran.
    assert_eq!(
        calls
            .0
            .iter()
            .filter(|call| call.key.stage == "plan" && call.key.phase == "agent")
            .count(),
        4,
        "{calls:#?}"
    );
    for agent in [
        "core-implementer",
        "integrations-engineer",
        "test-engineer",
        "docs-engineer",
    ] {
        assert_eq!(
            calls.of_agent("agent", agent).len(),
            1,
            "{agent}: {calls:#?}"
        );
    }
    assert!(
        repo.run_dir(&run)
            .join("prep/staged/implementation_plan.md")
            .is_file()
    );
    let status = repo.run_status(&run);
    assert_eq!(gate_state(&status, "plan"), "approved");
    assert_eq!(gate_state(&status, "prep"), "pending");

    repo.run(&["approve"]).expect_code(EXIT_DONE);
    assert!(repo.exists(&format!("{FEATURE}/implementation_plan.md")));
}

#[test]
fn a_decision_without_a_run_id_needs_exactly_one_pending_gate() {
    let repo = TestRepo::with_approved_spec();
    repo.run(&["approve"])
        .expect_code(EXIT_USAGE)
        .stderr_has("no gate is waiting");
    // One pending gate per feature and stage: two features, each waiting at its plan gate.
    let other = "specs/002-other";
    repo.write(
        &format!("{other}/spec.md"),
        &repo.read(&format!("{FEATURE}/spec.md")),
    );
    repo.run(&["approve", "spec", "--feature", other])
        .expect_code(EXIT_DONE);
    let first = repo
        .run(&["run", "plan", "--no-input", "--feature", other])
        .expect_code(EXIT_AWAITING_DECISION)
        .run_id();
    let second = repo
        .run(&["run", "plan", "--no-input", "--feature", FEATURE])
        .expect_code(EXIT_AWAITING_DECISION)
        .run_id();
    assert_ne!(first, second);
    repo.run(&["approve"])
        .expect_code(EXIT_USAGE)
        .stderr_has(&first)
        .stderr_has(&second);
    repo.run(&["reject", "--reason", "which one?"])
        .expect_code(EXIT_USAGE);
    assert!(!repo.exists(&format!("{FEATURE}/plan.md")));

    repo.run(&["reject", &first, "--reason", "not this one"])
        .expect_code(EXIT_DONE);
    // Now one is left, and it is the one decided.
    repo.run(&["approve"])
        .expect_code(EXIT_DONE)
        .stderr_has(&second);
    assert_eq!(
        repo.read(&format!("{FEATURE}/plan.md")),
        std::fs::read_to_string(repo.run_dir(&second).join("plan/staged/plan.md"))
            .expect("staged plan.md")
    );
}

#[test]
fn a_newer_run_of_a_stage_supersedes_the_gate_an_older_one_left_waiting() {
    let repo = TestRepo::with_approved_spec();
    let first = repo.run_plan_to_gate();
    let outcome = repo
        .run(&["run", "plan", "--no-input"])
        .expect_code(EXIT_AWAITING_DECISION)
        .stderr_has(&format!(
            "run {first}'s plan gate was still waiting for a decision; it is superseded (superseded by run"
        ));
    let second = outcome.run_id();
    let status = repo.run_status(&first);
    assert_eq!(gate_state(&status, "plan"), "superseded");
    assert_eq!(status["run"]["state"], "superseded");
    let kinds: Vec<String> = decisions(&status)
        .into_iter()
        .map(|(kind, _)| kind)
        .collect();
    assert_eq!(kinds, ["supersede"]);
    // The older gate cannot be decided any more; the newer one is the one pending gate.
    repo.run(&["approve", &first])
        .expect_code(crate::harness::EXIT_ALREADY_DECIDED)
        .stderr_has("superseded");
    repo.run(&["approve"])
        .expect_code(EXIT_DONE)
        .stderr_has(&second);
    assert_eq!(
        repo.read(&format!("{FEATURE}/plan.md")),
        std::fs::read_to_string(repo.run_dir(&second).join("plan/staged/plan.md"))
            .expect("staged plan.md")
    );
}
