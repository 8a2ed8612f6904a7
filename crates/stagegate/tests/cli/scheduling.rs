//! The stage loop as the agents saw it: phase order, how many run at once, retries.

use crate::harness::{Calls, EXIT_AWAITING_DECISION, PLAN_AGENTS, TestRepo};

#[test]
fn the_phases_run_in_order_agents_review_synthesis_qa() {
    let repo = TestRepo::with_approved_spec();
    repo.run_plan_to_gate();
    let calls = repo.calls();

    let agents = calls.phase("agent");
    assert_eq!(agents.len(), 4, "{calls:#?}");
    let review = calls.phase("review");
    assert_eq!(review.len(), 1, "{calls:#?}");
    let review = review[0];
    assert_eq!(review.key.agent, "lead-reviewer-a");
    for agent in &agents {
        assert!(
            agent.end() <= review.start,
            "{} ended after the review started: {calls:#?}",
            agent.key.agent
        );
    }

    let plan = calls.synthesis_of("plan.md");
    let summary = calls.synthesis_of("planning-summary.md");
    assert_eq!((plan.len(), summary.len()), (1, 1), "{calls:#?}");
    // The artifacts are synthesized concurrently under the stage's limit (their order of
    // dispatch is asserted under the paused clock in the engine's tests): both after the review.
    assert!(
        review.end() <= plan[0].start && review.end() <= summary[0].start,
        "synthesis before the review ended"
    );

    let qa = calls.phase("qa");
    assert_eq!(qa.len(), 1, "{calls:#?}");
    assert_eq!(qa[0].key.agent, "main-agent");
    let last = calls.0.last().expect("calls");
    assert_eq!(last.key.phase, "qa", "QA is not the last call: {calls:#?}");
    for call in &calls.0[..calls.0.len() - 1] {
        assert!(call.end() <= qa[0].start, "{call:?} overlaps QA");
    }
}

#[test]
fn a_stage_runs_at_most_its_concurrency_of_agents_at_once() {
    let mut repo = TestRepo::with_approved_spec().set("stages.plan", "concurrency", "2");
    for agent in PLAN_AGENTS {
        repo = repo.behaviour(agent, "sleep 0.5");
    }
    repo.run_plan_to_gate();
    let calls = repo.calls();
    let agents = calls.phase("agent");
    assert_eq!(agents.len(), 4);
    let overlap = Calls::max_overlap(&agents);
    assert!(overlap <= 2, "{overlap} agents ran at once: {calls:#?}");
    // With four half-second agents and two slots, two do run together.
    assert_eq!(overlap, 2, "the agents did not run in parallel: {calls:#?}");
}

#[test]
fn concurrency_1_on_the_command_line_runs_the_agents_one_after_another() {
    let mut repo = TestRepo::with_approved_spec();
    for agent in PLAN_AGENTS {
        repo = repo.behaviour(agent, "sleep 0.2");
    }
    repo.run(&["run", "plan", "--no-input", "--concurrency", "1"])
        .expect_code(EXIT_AWAITING_DECISION)
        .stderr_has("1 at once");
    let calls = repo.calls();
    let agents = calls.phase("agent");
    assert_eq!(agents.len(), 4);
    for pair in agents.windows(2) {
        assert!(
            pair[0].end() <= pair[1].start,
            "{} and {} overlap: {calls:#?}",
            pair[0].key.agent,
            pair[1].key.agent
        );
    }
}

#[test]
fn a_failed_attempt_is_retried_after_the_backoff_and_the_run_goes_on() {
    let repo = TestRepo::with_approved_spec().behaviour("requirements-analyst", "fail 1");
    let outcome = repo
        .run(&["run", "plan", "--no-input"])
        .expect_code(EXIT_AWAITING_DECISION);
    let run = outcome.run_id();
    let calls = repo.calls();
    let attempts = calls.of_agent("agent", "requirements-analyst");
    assert_eq!(attempts.len(), 2, "{calls:#?}");
    let (first, second) = (attempts[0], attempts[1]);
    assert_eq!((first.key.attempt, second.key.attempt), (1, 2));
    assert_eq!(first.status.as_deref(), Some("fail"));
    assert_eq!(second.status.as_deref(), Some("ok"));
    // backoff = "200ms": retry 1 waits at least that long after attempt 1 ended.
    assert!(
        second.start >= first.end() + 200,
        "attempt 2 started {} ms after attempt 1 ended: {calls:#?}",
        second.start.saturating_sub(first.end())
    );

    let status = repo.run_status(&run);
    let summary = status["agents"]
        .as_array()
        .expect("agents")
        .iter()
        .find(|agent| agent["agent"] == "requirements-analyst")
        .expect("requirements-analyst in status")
        .clone();
    assert_eq!(summary["attempts"], 2, "{summary:#}");
    assert_eq!(summary["outcome"], "ok", "{summary:#}");
    // Its first attempt's failure is kept with stderr.
    assert!(
        repo.attempt_text(&run, "plan", "requirements-analyst", 1, "stderr")
            .expect("the failed attempt's stderr")
            .contains("scripted failure")
    );
}

#[test]
fn a_qa_rework_verdict_sends_its_feedback_back_to_the_synthesizer() {
    let repo = TestRepo::with_approved_spec().behaviour("main-agent", "verdict-rework-once");
    let run = repo.run_plan_to_gate();
    let calls = repo.calls();
    let plan = calls.synthesis_of("plan.md");
    let qa = calls.phase("qa");
    assert_eq!((plan.len(), qa.len()), (2, 2), "{calls:#?}");
    // synthesis → QA (REWORK) → synthesis again → QA (PASS).
    assert!(qa[0].end() <= plan[1].start, "{calls:#?}");
    assert!(plan[1].end() <= qa[1].start, "{calls:#?}");
    let prompt = repo.prompt_seen("plan", "synthesis", "lead-synthesizer-a", "plan.md", 2);
    assert!(
        prompt.contains("The plan misses a rollout section."),
        "the QA feedback is not in the second synthesis prompt:\n{prompt}"
    );
    let first = repo.prompt_seen("plan", "synthesis", "lead-synthesizer-a", "plan.md", 1);
    assert!(!first.contains("rollout"), "{first}");
    let staged = std::fs::read_to_string(repo.run_dir(&run).join("plan/staged/plan.md"))
        .expect("staged plan.md");
    assert!(
        staged.contains("call 2"),
        "the reworked plan.md is not staged: {staged}"
    );
}
