//! `modify` on a cluster run: the rework happens on the user's machine, and the workflow's gate
//! moves to its next round, still open; the final decision closes it.

use crate::dev_server::{DevServer, Worker};
use crate::harness::{EXIT_AWAITING_DECISION, EXIT_DONE, FEATURE, TestRepo};
use crate::spread::run_plan_to_gate_on;

#[test]
fn a_modification_moves_the_workflow_s_gate_to_its_next_round_and_approve_closes_it() {
    let repo = TestRepo::with_approved_spec();
    let server = DevServer::start();
    let _worker = Worker::start(&repo, &server);
    let run_id = run_plan_to_gate_on(&repo, &server);
    let view = server.gate_view(&run_id, "plan");
    assert_eq!(
        (view["phase"].as_str(), view["round"].as_u64()),
        (Some("waiting"), Some(1)),
        "{view:#}"
    );

    repo.run(&[
        "modify",
        &run_id,
        "--feedback",
        "name the risks",
        "--no-input",
    ])
    .expect_code(EXIT_AWAITING_DECISION);
    let view = server.gate_view(&run_id, "plan");
    assert_eq!(
        (view["phase"].as_str(), view["round"].as_u64()),
        (Some("waiting"), Some(2)),
        "{view:#}"
    );
    assert!(view["decision"].is_null(), "{view:#}");

    repo.run(&["approve", &run_id]).expect_code(EXIT_DONE);
    let view = server.gate_view(&run_id, "plan");
    assert_eq!(view["phase"], "closed", "{view:#}");
    assert_eq!(view["decision"], "approve", "{view:#}");
    assert!(repo.exists(&format!("{FEATURE}/plan.md")));
}
