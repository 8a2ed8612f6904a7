//! The same feature, run in this process and on Temporal with the built-in backend, publishes
//! byte-identical artifacts; the cluster's gate takes one decision.

use std::collections::BTreeMap;
use std::path::Path;

use crate::dev_server::{DevServer, Worker};
use crate::harness::{EXIT_ALREADY_DECIDED, EXIT_AWAITING_DECISION, EXIT_DONE, FEATURE, TestRepo};

/// A repository whose every agent is the built-in analyst, with spec.md approved.
fn builtin_repo() -> TestRepo {
    let repo = TestRepo::new().set("defaults", "backend", "\"builtin\"");
    repo.run(&["approve", "spec"]).expect_code(EXIT_DONE);
    repo
}

/// Every file of the feature directory, by name.
fn feature_files(repo: &TestRepo) -> BTreeMap<String, Vec<u8>> {
    let dir = repo.path(FEATURE);
    std::fs::read_dir(&dir)
        .expect("read the feature directory")
        .map(|entry| {
            let path = entry.expect("an entry").path();
            let name = file_name(&path);
            (name, std::fs::read(&path).expect("read a feature file"))
        })
        .collect()
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .expect("a file name")
        .to_string_lossy()
        .into_owned()
}

#[test]
fn builtin_artifacts_are_byte_identical_in_process_and_on_temporal() {
    let here = builtin_repo();
    let run_here = here.run_plan_to_gate();
    here.run(&["approve", &run_here]).expect_code(EXIT_DONE);

    let server = DevServer::start();
    let cluster = builtin_repo();
    let _worker = Worker::start(&cluster, &server);
    let run_there = cluster
        .run(&["run", "plan", "--no-input", "--temporal", &server.address])
        .expect_code(EXIT_AWAITING_DECISION)
        .stderr_has("Temporal cluster")
        .run_id();
    // The user's machine recorded the stage as it ran on the worker.
    let status = cluster.run_status(&run_there);
    assert_eq!(status["run"]["state"], "awaiting_decision", "{status:#}");
    cluster.run(&["approve", &run_there]).expect_code(EXIT_DONE);
    // The gate took its decision: another one is refused, as in this process.
    cluster
        .run(&["reject", &run_there, "--reason", "too late"])
        .expect_code(EXIT_ALREADY_DECIDED);

    let published_here = feature_files(&here);
    let published_there = feature_files(&cluster);
    assert!(
        published_here.contains_key("plan.md"),
        "{:?}",
        published_here.keys()
    );
    assert_eq!(
        published_here.keys().collect::<Vec<_>>(),
        published_there.keys().collect::<Vec<_>>()
    );
    for (name, bytes) in &published_here {
        assert!(
            published_there.get(name) == Some(bytes),
            "{name} differs between the run in process and the run on Temporal"
        );
    }
}
