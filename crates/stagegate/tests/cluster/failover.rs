//! Two workers; the one running a stage's agents is killed with `kill -9` in the middle of the
//! stage: the other finishes the stage, no agent that had finished runs again, the gate waits,
//! and `stagegate approve` publishes.

use std::time::Duration;

use crate::dev_server::{DevServer, Worker};
use crate::harness::{
    EXIT_AWAITING_DECISION, EXIT_DONE, FEATURE, PLAN_AGENTS, TestRepo, wait_for_exit,
};
use crate::spread::wait_for_quick_and_slow;

#[test]
fn a_killed_worker_s_stage_finishes_on_the_other_without_rerunning_finished_agents() {
    let [quick_one, quick_two, slow_one, slow_two] = PLAN_AGENTS;
    let repo = TestRepo::with_approved_spec()
        .set("timeouts", "default", "\"60s\"")
        .behaviour(slow_one, "sleep 30")
        .behaviour(slow_two, "sleep 30");
    let server = DevServer::start();
    let mut first = Worker::start(&repo, &server);
    let args = ["run", "plan", "--no-input", "--temporal", &server.address];
    let run = repo.spawn(&args);

    wait_for_quick_and_slow(
        &repo,
        &server,
        &[quick_one, quick_two],
        &[slow_one, slow_two],
    );
    // Only now the second worker: the stage and every attempt so far are the first one's. A
    // finished attempt's workflow is closed with its answer: the second worker is given it.
    let _second = Worker::start(&repo, &server);
    first.kill_9();
    // The slow agents answer at once on the second worker.
    std::fs::write(repo.fake_dir.join(format!("{slow_one}.behaviour")), "\n")
        .expect("rewrite a behaviour");
    std::fs::write(repo.fake_dir.join(format!("{slow_two}.behaviour")), "\n")
        .expect("rewrite a behaviour");

    let outcome = wait_for_exit(run, &args, Duration::from_secs(120));
    let run_id = outcome.expect_code(EXIT_AWAITING_DECISION).run_id();
    let calls = repo.calls();
    for agent in [quick_one, quick_two] {
        assert_eq!(
            calls.of_agent("agent", agent).len(),
            1,
            "{agent} had finished on the killed worker and ran again: {:#?}",
            calls.0
        );
    }
    for agent in [slow_one, slow_two] {
        assert_eq!(
            calls.of_agent("agent", agent).len(),
            2,
            "{agent} should have started on both workers: {:#?}",
            calls.0
        );
    }
    assert!(
        !repo.exists(&format!("{FEATURE}/plan.md")),
        "published before the gate"
    );
    repo.run(&["approve", &run_id]).expect_code(EXIT_DONE);
    assert!(repo.exists(&format!("{FEATURE}/plan.md")));
}
