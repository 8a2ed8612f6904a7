//! A run that names its repository (`[cluster] repository`) sends its CLI agents' attempts only
//! to the workers that serve that repository (`stagegate worker --repo NAME=PATH`); its other
//! agents (here mocks) go to any worker.

use std::collections::BTreeSet;

use crate::dev_server::{DevServer, Worker};
use crate::harness::{EXIT_DONE, EXIT_USAGE, FEATURE, TestRepo};
use crate::spread::{
    AGENTS, agent_names, attempt_workers, run_plan_to_gate_on, with_agents, workers_where,
};

#[test]
fn cli_agents_run_only_on_workers_with_the_checkout_and_the_others_anywhere() {
    let names = agent_names(AGENTS);
    let mut repo = with_agents(TestRepo::with_approved_spec(), &names)
        .set("backends.anywhere", "kind", "\"mock\"")
        .set("backends.anywhere", "latency", "\"500ms\"")
        .set("cluster", "repository", "\"demo\"");
    // Role agents on the mock; reviewer, synthesizer and QA stay on the fake CLI agent.
    for name in &names {
        repo = repo.set(&format!("agents.{name}"), "backend", "\"anywhere\"");
    }
    let server = DevServer::start();
    let checkout = format!("demo={}", repo.root.display());
    let _plain = Worker::named(&repo, &server, "plain");
    let _serving = Worker {
        child: repo.spawn(&[
            "worker",
            "--temporal",
            &server.address,
            "--name",
            "with-checkout",
            "--repo",
            &checkout,
        ]),
    };
    let run_id = run_plan_to_gate_on(&repo, &server);

    let workers = attempt_workers(&repo, &run_id);
    assert_eq!(
        workers_where(&workers, |phase| phase != "agent"),
        BTreeSet::from(["with-checkout"]),
        "CLI agents (review, synthesis, QA) ran on a worker without the checkout: {workers:#?}"
    );
    assert_eq!(
        workers_where(&workers, |phase| phase == "agent"),
        BTreeSet::from(["plain", "with-checkout"]),
        "mock agents should go to any worker: {workers:#?}"
    );
    repo.run(&["approve", &run_id]).expect_code(EXIT_DONE);
    assert!(repo.exists(&format!("{FEATURE}/plan.md")));
}

#[test]
fn a_repository_that_is_not_a_directory_is_refused_with_the_form_expected() {
    let repo = TestRepo::new();
    let missing = format!("demo={}", repo.path("no-such-checkout").display());
    for (argument, expected) in [
        ("demo", "expected NAME=PATH"),
        (missing.as_str(), "cannot be used"),
    ] {
        repo.run(&["worker", "--temporal", "127.0.0.1:1", "--repo", argument])
            .expect_code(EXIT_USAGE)
            .stderr_has(expected);
    }
}
