//! `status` reads each run's view from the snapshot its process saved and folds only the
//! events after it: a decision taken by another process shows, and without the snapshot (or
//! with one that does not read) the output is the same, folded from the whole log.

use stagegate_store::RunViewSnapshot;

use crate::harness::{EXIT_DONE, TestRepo, with_store};

/// `SNAPSHOT_FORMAT` in `run_view.rs`: raise it here with it.
const FORMAT: i64 = 1;

/// `status` and `status --json` (every run), and `status RUN`, as printed.
fn statuses(repo: &TestRepo, run: &str) -> [String; 3] {
    [
        repo.run(&["status"]).expect_code(EXIT_DONE).stdout,
        repo.run(&["status", "--json"])
            .expect_code(EXIT_DONE)
            .stdout,
        repo.run(&["status", run]).expect_code(EXIT_DONE).stdout,
    ]
}

#[test]
fn status_folds_a_decision_of_another_process_after_the_snapshot_and_reads_the_same_without_it() {
    let repo = TestRepo::with_approved_spec().behaviour("estimation-scope-analyst", "fail-always");
    let run = repo.run_plan_to_gate();

    // The run's process saved its view, through its last event.
    let (snapshot, tail) = with_store(&repo, async |store| {
        store.run_view_with_tail(&run, FORMAT).await.expect("read")
    });
    let snapshot = snapshot.expect("the run's process saved its view");
    assert!(tail.is_empty(), "{tail:?}");
    let at_gate = statuses(&repo, &run);
    assert!(at_gate[0].contains("waiting: run"), "{}", at_gate[0]);
    assert!(at_gate[0].contains("partial failures:"), "{}", at_gate[0]);

    // Another process rejects the gate: its event comes after the snapshot.
    repo.run(&["reject", &run, "--reason", "too vague about storage"])
        .expect_code(EXIT_DONE);
    let (unchanged, tail) = with_store(&repo, async |store| {
        store.run_view_with_tail(&run, FORMAT).await.expect("read")
    });
    assert_eq!(unchanged.as_ref(), Some(&snapshot));
    assert_eq!(
        tail.iter()
            .map(|event| event.kind.as_str())
            .collect::<Vec<_>>(),
        ["gate_decided", "run_finished"]
    );
    let rejected = statuses(&repo, &run);
    assert!(
        rejected[0].contains("last decision: plan reject by ")
            && rejected[0].contains(": too vague about storage"),
        "{}",
        rejected[0]
    );
    assert!(!rejected[0].contains("waiting: run"), "{}", rejected[0]);
    assert!(rejected[0].contains("partial failures:"), "{}", rejected[0]);
    let listed: serde_json::Value = serde_json::from_str(&rejected[1]).expect("JSON");
    let entry = &listed["runs"][0];
    assert!(entry["pending_gate"].is_null(), "{entry:#}");
    assert_eq!(entry["stage_states"][0]["state"], "rejected", "{entry:#}");
    assert_eq!(entry["last_decision"]["kind"], "reject", "{entry:#}");

    // A snapshot that does not read is ignored: the whole log gives the same output.
    with_store(&repo, async |store| {
        let garbage = RunViewSnapshot {
            view_json: "{\"not\": \"a view\"}".to_owned(),
            ..snapshot.clone()
        };
        store.save_run_view(&garbage, FORMAT).await.expect("save");
    });
    assert_eq!(statuses(&repo, &run), rejected);

    // No snapshot in this build's format (one of another format replaced it): the same.
    with_store(&repo, async |store| {
        store
            .save_run_view(&snapshot, FORMAT + 1)
            .await
            .expect("save");
        assert_eq!(
            store
                .run_view_with_tail(&run, FORMAT)
                .await
                .expect("read")
                .0,
            None
        );
    });
    assert_eq!(statuses(&repo, &run), rejected);
}

#[test]
fn a_resumed_run_saves_a_view_of_its_whole_log() {
    let repo = TestRepo::with_approved_spec();
    let run = repo.run_plan_to_gate();
    repo.run(&["approve", &run]).expect_code(EXIT_DONE);
    let approved = statuses(&repo, &run);
    repo.run(&["resume", &run]).expect_code(EXIT_DONE);

    // The resume started from the saved view and the approval after it, and saved a view
    // covering everything; it reads the same as the whole log folded.
    let (snapshot, tail) = with_store(&repo, async |store| {
        store.run_view_with_tail(&run, FORMAT).await.expect("read")
    });
    assert!(snapshot.is_some());
    assert!(tail.is_empty(), "{tail:?}");
    let resumed = statuses(&repo, &run);
    assert_ne!(resumed, approved);
    assert!(
        resumed[0].contains("last decision: plan approve by "),
        "{}",
        resumed[0]
    );
    with_store(&repo, async |store| {
        store
            .save_run_view(&snapshot.expect("a view"), FORMAT + 1)
            .await
            .expect("save");
    });
    assert_eq!(statuses(&repo, &run), resumed);
}
