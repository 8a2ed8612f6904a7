//! The store's behaviour through its public API, on real files in temporary directories.

#![expect(
    clippy::unwrap_used,
    reason = "a failing test should stop at the failing line"
)]

use std::path::Path;

use serde_json::json;
use stagegate_run::{GateStatus, Refusal, Request, Verb};
use stagegate_store::{
    ApprovalRecord, AttemptRecord, BatchWrite, CacheEntry, DecisionKind, DecisionRecord,
    DecisionRequest, GateDecision, GateRecord, GateState, LineComment, LockRecord, NewPublication,
    NewRun, Refused, RunState, RunUnlock, Store, StoreError,
};

fn new_run(id: &str, created_at_ms: i64) -> NewRun {
    NewRun {
        id: id.to_owned(),
        feature_dir: "specs/001-login".to_owned(),
        stages: vec!["plan".to_owned(), "prep".to_owned()],
        settings_json: json!({ "concurrency": 3, "timeouts": { "default": "30s" } }).to_string(),
        created_at_ms,
    }
}

fn attempt(run_id: &str, agent: &str, number: u32) -> AttemptRecord {
    AttemptRecord {
        run_id: run_id.to_owned(),
        stage: "plan".to_owned(),
        phase: "agent".to_owned(),
        agent: agent.to_owned(),
        attempt: number,
        backend: "builtin".to_owned(),
        started_at_ms: 1_000,
        finished_at_ms: None,
        outcome: None,
        failure_reason: None,
        output_hash: None,
        output_bytes: None,
        confidence: None,
        input_tokens: None,
        output_tokens: None,
        cost_usd: None,
    }
}

fn gate(run_id: &str, stage: &str, opened_at_ms: i64) -> GateRecord {
    GateRecord {
        run_id: run_id.to_owned(),
        stage: stage.to_owned(),
        question: "Planning artifacts synthesized. Approve to proceed?".to_owned(),
        artifacts: vec!["plan.md".to_owned(), "planning-summary.md".to_owned()],
        state: GateState::Pending,
        round: 1,
        opened_at_ms,
        closed_at_ms: None,
    }
}

fn decision(run_id: &str, kind: DecisionKind, decided_at_ms: i64) -> DecisionRecord {
    DecisionRecord {
        id: None,
        run_id: run_id.to_owned(),
        stage: "plan".to_owned(),
        kind,
        reason: (kind == DecisionKind::Reject).then(|| "missing risks".to_owned()),
        note: Some("looked at it".to_owned()),
        diff: (kind == DecisionKind::Modify).then(|| "-old\n+new\n".to_owned()),
        decided_by: "alice".to_owned(),
        decided_at_ms,
    }
}

fn approval(subject: &str, hash: &str, approved_at_ms: i64) -> ApprovalRecord {
    ApprovalRecord {
        feature_dir: "specs/001-login".to_owned(),
        subject: subject.to_owned(),
        path: "specs/001-login/spec.md".to_owned(),
        content_hash: hash.to_owned(),
        run_id: None,
        stage: None,
        approved_at_ms,
    }
}

fn cache_entry(key: &str, run_id: &str, expires_at_ms: i64) -> CacheEntry {
    CacheEntry {
        key: key.to_owned(),
        phase: "agent".to_owned(),
        output: format!("output of {key}"),
        output_hash: format!("hash of {key}"),
        run_id: run_id.to_owned(),
        created_at_ms: expires_at_ms - 900_000,
        expires_at_ms,
    }
}

fn lock(run_id: &str, pid: u32) -> LockRecord {
    LockRecord {
        feature_dir: "specs/001-login".to_owned(),
        stage: "plan".to_owned(),
        run_id: run_id.to_owned(),
        pid,
        acquired_at_ms: 1_000,
        boot_id: Some("boot-a".to_owned()),
        start_ticks: Some(u64::from(pid) * 10),
    }
}

/// Runs `sql` on `database` through a plain connection (creating the file), the way another
/// program or a newer stagegate would have written it.
/// A state directory holding the database an older stagegate left, made by running `sql` by
/// hand: the temporary directory (to keep), the state directory and the database file.
async fn database_left_by(
    sql: &str,
) -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let directory = tempfile::tempdir().unwrap();
    let state_dir = directory.path().join(".stagegate");
    std::fs::create_dir_all(&state_dir).unwrap();
    let database = state_dir.join("state.db");
    execute_by_hand(&database, sql).await;
    (directory, state_dir, database)
}

async fn execute_by_hand(database: &Path, sql: &str) {
    use sqlx::{ConnectOptions, Connection};
    let mut connection = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(database)
        .create_if_missing(true)
        .connect()
        .await
        .unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut connection)
        .await
        .unwrap();
    connection.close().await.unwrap();
}

async fn open(directory: &Path) -> Store {
    Store::open(&directory.join(".stagegate")).await.unwrap()
}

#[tokio::test]
async fn open_creates_the_layout() {
    let directory = tempfile::tempdir().unwrap();
    let state_dir = directory.path().join(".stagegate");
    let store = Store::open(&state_dir).await.unwrap();
    assert_eq!(store.state_dir(), state_dir);
    assert!(state_dir.join("state.db").is_file());
    assert!(state_dir.join("runs").is_dir());
    assert_eq!(
        store.run_dir("r1").path(),
        state_dir.join("runs").join("r1")
    );
    assert!(store.runs().await.unwrap().is_empty());
}

#[tokio::test]
async fn runs_round_trip_newest_first() {
    let directory = tempfile::tempdir().unwrap();
    let store = open(directory.path()).await;

    let created = store.create_run(&new_run("r1", 100)).await.unwrap();
    assert_eq!(created.state, RunState::Running);
    assert_eq!(created.current_stage, None);
    assert_eq!(created.updated_at_ms, 100);
    // The settings are not echoed back (the caller has them); reading the run gives them.
    assert!(created.settings_json.is_null());
    store.create_run(&new_run("r2", 200)).await.unwrap();
    store.create_run(&new_run("r3", 150)).await.unwrap();

    let read = store.run_with_settings("r1").await.unwrap().unwrap();
    assert_eq!(
        read.settings_json,
        json!({ "concurrency": 3, "timeouts": { "default": "30s" } })
    );
    let without_settings = stagegate_store::RunRecord {
        settings_json: serde_json::Value::Null,
        ..read
    };
    assert_eq!(without_settings, created);
    // Reading the run alone leaves them out too.
    assert_eq!(store.run("r1").await.unwrap().unwrap(), created);
    assert_eq!(store.run("absent").await.unwrap(), None);
    assert_eq!(store.run_with_settings("absent").await.unwrap(), None);
    let listed = store.runs().await.unwrap();
    let ids: Vec<&str> = listed.iter().map(|run| run.id.as_str()).collect();
    assert_eq!(ids, ["r2", "r3", "r1"]);
    // A listing leaves the settings out; the run itself has them.
    assert!(listed.iter().all(|run| run.settings_json.is_null()));

    store
        .update_run("r1", RunState::AwaitingDecision, Some("plan"))
        .await
        .unwrap();
    let updated = store.run_with_settings("r1").await.unwrap().unwrap();
    assert_eq!(updated.state, RunState::AwaitingDecision);
    assert_eq!(updated.current_stage.as_deref(), Some("plan"));
    assert!(updated.updated_at_ms > 100);
    assert_eq!(
        updated.settings_json,
        json!({ "concurrency": 3, "timeouts": { "default": "30s" } })
    );
    assert_eq!(updated.stages, ["plan", "prep"]);

    store
        .update_run("r1", RunState::Completed, None)
        .await
        .unwrap();
    let finished = store.run("r1").await.unwrap().unwrap();
    assert_eq!(finished.state, RunState::Completed);
    assert_eq!(finished.current_stage, None);
}

#[tokio::test]
async fn a_run_whose_settings_are_not_json_is_refused() {
    let directory = tempfile::tempdir().unwrap();
    let store = open(directory.path()).await;
    let run = NewRun {
        settings_json: "{\"concurrency\": ".to_owned(),
        ..new_run("r1", 100)
    };
    let error = store.create_run(&run).await.unwrap_err();
    assert!(error.to_string().contains("settings"), "{error}");
    assert_eq!(store.run("r1").await.unwrap(), None);
}

#[tokio::test]
async fn run_errors_name_the_run() {
    let directory = tempfile::tempdir().unwrap();
    let store = open(directory.path()).await;
    store.create_run(&new_run("r1", 100)).await.unwrap();

    let error = store.create_run(&new_run("r1", 200)).await.unwrap_err();
    assert!(
        matches!(&error, StoreError::RunExists { run_id, .. } if run_id == "r1"),
        "{error}"
    );
    let error = store
        .update_run("nope", RunState::Failed, None)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, StoreError::UnknownRun { run_id, .. } if run_id == "nope"),
        "{error}"
    );
    assert!(error.to_string().contains("hint:"));
    let error = store
        .append_event("nope", "run_started", &json!({}))
        .await
        .unwrap_err();
    assert!(matches!(&error, StoreError::UnknownRun { .. }), "{error}");
}

#[tokio::test]
async fn events_round_trip_in_order() {
    let directory = tempfile::tempdir().unwrap();
    let store = open(directory.path()).await;
    store.create_run(&new_run("r1", 100)).await.unwrap();
    store.create_run(&new_run("r2", 100)).await.unwrap();

    let first = store
        .append_event("r1", "run_started", &json!({ "stages": ["plan"] }))
        .await
        .unwrap();
    let other = store
        .append_event("r2", "run_started", &json!(null))
        .await
        .unwrap();
    let second = store
        .append_event(
            "r1",
            "attempt_finished",
            &json!({ "agent": "a", "outcome": "ok", "bytes": 12 }),
        )
        .await
        .unwrap();
    assert!(first < other && other < second);

    let events = store.events("r1").await.unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].seq, first);
    assert_eq!(events[0].run_id, "r1");
    assert_eq!(events[0].kind, "run_started");
    assert_eq!(events[0].payload, json!({ "stages": ["plan"] }));
    assert!(events[0].recorded_at_ms > 0);
    assert_eq!(events[1].seq, second);
    assert_eq!(events[1].payload["bytes"], 12);
    assert!(store.events("absent").await.unwrap().is_empty());
}

#[tokio::test]
async fn events_are_read_after_a_seq_or_by_kind() {
    let directory = tempfile::tempdir().unwrap();
    let store = open(directory.path()).await;
    store.create_run(&new_run("r1", 100)).await.unwrap();
    store.create_run(&new_run("r2", 100)).await.unwrap();
    let mut seqs = Vec::new();
    for (run, kind) in [
        ("r1", "run_started"),
        ("r1", "adjusted"),
        ("r2", "adjusted"),
        ("r1", "attempt_started"),
        ("r1", "context_cut"),
    ] {
        seqs.push(store.append_event(run, kind, &json!({})).await.unwrap());
    }
    let seqs_of = |events: Vec<stagegate_store::EventRecord>| {
        events.iter().map(|event| event.seq).collect::<Vec<_>>()
    };

    assert_eq!(
        seqs_of(store.events_after("r1", seqs[1]).await.unwrap()),
        [seqs[3], seqs[4]]
    );
    assert_eq!(
        seqs_of(store.events_after("r1", 0).await.unwrap()),
        seqs_of(store.events("r1").await.unwrap())
    );
    assert_eq!(
        seqs_of(
            store
                .events_of_kinds("r1", &["context_cut", "adjusted"])
                .await
                .unwrap()
        ),
        [seqs[1], seqs[4]]
    );
    assert!(store.events_of_kinds("r1", &[]).await.unwrap().is_empty());
}

#[tokio::test]
async fn attempts_upsert_on_their_identity() {
    let directory = tempfile::tempdir().unwrap();
    let store = open(directory.path()).await;
    store.create_run(&new_run("r1", 100)).await.unwrap();

    let started = attempt("r1", "solution-architect", 1);
    store.record_attempt(&started).await.unwrap();
    store
        .record_attempt(&attempt("r1", "requirements-analyst", 1))
        .await
        .unwrap();
    assert_eq!(store.attempts("r1").await.unwrap()[0], started);

    let finished = AttemptRecord {
        finished_at_ms: Some(2_500),
        outcome: Some("failed".to_owned()),
        failure_reason: Some("exit status 1".to_owned()),
        output_hash: Some(stagegate_store::content_hash(b"partial")),
        output_bytes: Some(7),
        confidence: Some(0.75),
        input_tokens: Some(1200),
        output_tokens: Some(340),
        cost_usd: Some(0.0123),
        ..started.clone()
    };
    store.record_attempt(&finished).await.unwrap();
    let retry = AttemptRecord {
        attempt: 2,
        ..started.clone()
    };
    store.record_attempt(&retry).await.unwrap();

    let attempts = store.attempts("r1").await.unwrap();
    assert_eq!(attempts.len(), 3);
    assert_eq!(attempts[0], finished);
    assert_eq!(attempts[1].agent, "requirements-analyst");
    assert_eq!(attempts[2], retry);
}

#[tokio::test]
async fn gates_open_close_and_list_pending() {
    let directory = tempfile::tempdir().unwrap();
    let store = open(directory.path()).await;
    store.create_run(&new_run("r1", 100)).await.unwrap();
    store.create_run(&new_run("r2", 100)).await.unwrap();
    assert_eq!(store.gate("r1", "plan").await.unwrap(), None);

    store.open_gate(&gate("r2", "plan", 20)).await.unwrap();
    store.open_gate(&gate("r1", "plan", 10)).await.unwrap();
    store.open_gate(&gate("r1", "prep", 30)).await.unwrap();
    assert_eq!(
        store.gate("r1", "plan").await.unwrap(),
        Some(gate("r1", "plan", 10))
    );
    let pending: Vec<(String, String)> = store
        .pending_gates()
        .await
        .unwrap()
        .into_iter()
        .map(|gate| (gate.run_id, gate.stage))
        .collect();
    assert_eq!(
        pending,
        [
            ("r1".into(), "plan".into()),
            ("r2".into(), "plan".into()),
            ("r1".into(), "prep".into())
        ]
    );

    let accepted = store
        .decide_gate(&request("r1", "plan", Verb::Approve, None), |_| {
            Ok(Some(publication()))
        })
        .await
        .unwrap();
    assert!(
        matches!(accepted, GateDecision::Accepted(_)),
        "{accepted:?}"
    );
    let closed = store.gate("r1", "plan").await.unwrap().unwrap();
    assert_eq!(closed.state, GateState::Approved);
    assert!(closed.closed_at_ms.is_some());
    assert_eq!(store.pending_gates().await.unwrap().len(), 2);
    assert_eq!(
        store.run("r1").await.unwrap().unwrap().state,
        RunState::Paused
    );
    let publication_record = store.publication("r1", "plan").await.unwrap().unwrap();
    assert_eq!(publication_record.artifacts, publication().artifacts);
    assert_eq!(store.pending_publications().await.unwrap().len(), 1);

    // Every later request is refused, names the decision that stands, and records nothing.
    for verb in [Verb::Approve, Verb::Reject, Verb::Modify] {
        let refused = store
            .decide_gate(&request("r1", "plan", verb, None), |_| {
                panic!("a refused decision must not reach its effects")
            })
            .await
            .unwrap();
        let GateDecision::Refused(refused) = refused else {
            panic!("{refused:?}");
        };
        assert_eq!(
            refused.refusal,
            Refusal::AlreadyDecided {
                status: GateStatus::Approved
            }
        );
        assert_eq!(refused.decided_by.unwrap().kind, DecisionKind::Approve);
    }
    assert_eq!(store.decisions("r1").await.unwrap().len(), 1);
    let error = store
        .decide_gate(&request("r1", "analyze", Verb::Approve, None), |_| Ok(None))
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::UnknownGate { .. }), "{error}");

    // A modification opens the next round, its line comments recorded with it (on the round
    // they were written on); a decision on the round before is refused and records none.
    let comment = |line: u32, text: &str| LineComment {
        artifact: "plan.md".to_owned(),
        first_line: line,
        last_line: line + 2,
        quoted: format!("line {line}"),
        comment: text.to_owned(),
    };
    let mut modify = request("r2", "plan", Verb::Modify, Some(1));
    modify.comments = vec![comment(4, "too vague"), comment(9, "name the table")];
    let accepted = store.decide_gate(&modify, |_| Ok(None)).await.unwrap();
    let GateDecision::Accepted(accepted) = accepted else {
        panic!("{accepted:?}");
    };
    let modified = store.gate("r2", "plan").await.unwrap().unwrap();
    assert_eq!((modified.state, modified.round), (GateState::Pending, 2));
    let recorded = store.line_comments("r2").await.unwrap();
    assert_eq!(
        recorded
            .iter()
            .map(|record| (record.decision_id, record.round, record.comment.clone()))
            .collect::<Vec<_>>(),
        [
            (accepted.decision_id, 1, comment(4, "too vague")),
            (accepted.decision_id, 1, comment(9, "name the table")),
        ]
    );
    let mut stale = request("r2", "plan", Verb::Reject, Some(1));
    stale.comments = vec![comment(1, "late")];
    let stale = store.decide_gate(&stale, |_| Ok(None)).await.unwrap();
    assert_eq!(store.line_comments("r2").await.unwrap().len(), 2);
    assert!(
        matches!(
            stale,
            GateDecision::Refused(ref refused) if matches!(
                **refused,
                Refused {
                    refusal: Refusal::Superseded {
                        seen: 1,
                        current: 2
                    },
                    ..
                }
            )
        ),
        "{stale:?}"
    );
    // Opening a gate again never undoes a decision.
    store.open_gate(&gate("r1", "plan", 40)).await.unwrap();
    assert_eq!(
        store.gate("r1", "plan").await.unwrap().unwrap().state,
        GateState::Approved
    );
    // A failing effect records nothing.
    let error = store
        .decide_gate(&request("r2", "plan", Verb::Approve, None), |_| {
            Err(StoreError::DecisionEffect {
                what: "reading".to_owned(),
                source: std::io::Error::other("gone"),
            })
        })
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::DecisionEffect { .. }));
    assert_eq!(
        store.gate("r2", "plan").await.unwrap().unwrap().state,
        GateState::Pending
    );
}

fn request(run_id: &str, stage: &str, verb: Verb, seen_round: Option<u32>) -> DecisionRequest {
    DecisionRequest {
        run_id: run_id.to_owned(),
        stage: stage.to_owned(),
        request: Request { verb, seen_round },
        stage_is_last: false,
        reason: (verb == Verb::Reject).then(|| "no".to_owned()),
        note: None,
        diff: None,
        comments: Vec::new(),
        decided_by: "alice".to_owned(),
        decided_at_ms: 50,
        event_kind: "gate_decided".to_owned(),
        event_payload: json!({ "decision": verb.as_str() }),
    }
}

fn publication() -> NewPublication {
    NewPublication {
        feature_dir: "specs/001-login".to_owned(),
        artifacts: vec![("plan.md".to_owned(), "hash-plan".to_owned())],
        inputs: vec![("spec.md".to_owned(), "hash-spec".to_owned())],
    }
}

/// Many stores on one file (as many processes would be) decide one gate at once: exactly one
/// decision is accepted, and the database holds exactly that one.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_deciders_of_one_gate_have_exactly_one_winner() {
    for iteration in 0..20 {
        let directory = tempfile::tempdir().unwrap();
        let store = open(directory.path()).await;
        store.create_run(&new_run("r1", 100)).await.unwrap();
        store.open_gate(&gate("r1", "plan", 10)).await.unwrap();
        let mut deciders = Vec::new();
        for index in 0..6 {
            let state_dir = directory.path().join(".stagegate");
            let verb = if (index + iteration) % 2 == 0 {
                Verb::Approve
            } else {
                Verb::Reject
            };
            deciders.push(tokio::spawn(async move {
                let store = Store::open(&state_dir).await.unwrap();
                store
                    .decide_gate(&request("r1", "plan", verb, Some(1)), |transition| {
                        Ok(transition.publish.then(publication))
                    })
                    .await
                    .unwrap()
            }));
        }
        let mut winners = Vec::new();
        for decider in deciders {
            if let GateDecision::Accepted(accepted) = decider.await.unwrap() {
                winners.push(accepted.transition.gate.status);
            }
        }
        assert_eq!(winners.len(), 1, "iteration {iteration}: {winners:?}");
        let decisions = store.decisions("r1").await.unwrap();
        assert_eq!(decisions.len(), 1);
        let published = store.publication("r1", "plan").await.unwrap().is_some();
        assert_eq!(published, winners[0] == GateStatus::Approved);
        let gate_decided = store
            .events("r1")
            .await
            .unwrap()
            .iter()
            .filter(|event| event.kind == "gate_decided")
            .count();
        assert_eq!(gate_decided, 1);
    }
}

#[tokio::test]
async fn decisions_are_append_only_and_ordered() {
    let directory = tempfile::tempdir().unwrap();
    let store = open(directory.path()).await;
    store.create_run(&new_run("r1", 100)).await.unwrap();

    // At most one final decision per gate: the database itself refuses a second.
    let kinds = [
        DecisionKind::Modify,
        DecisionKind::Modify,
        DecisionKind::Reject,
    ];
    let mut ids = Vec::new();
    for (index, kind) in kinds.iter().enumerate() {
        // Decreasing times: the order is the order of recording, not of the clock.
        ids.push(
            store
                .record_decision(&decision("r1", *kind, 1_000 - index as i64))
                .await
                .unwrap(),
        );
    }
    assert!(ids.windows(2).all(|pair| pair[0] < pair[1]));

    let decisions = store.decisions("r1").await.unwrap();
    assert_eq!(decisions.len(), 3);
    for ((stored, kind), id) in decisions.iter().zip(kinds).zip(&ids) {
        let expected = DecisionRecord {
            id: Some(*id),
            ..decision("r1", kind, stored.decided_at_ms)
        };
        assert_eq!(stored, &expected);
    }
    assert_eq!(decisions[2].reason.as_deref(), Some("missing risks"));
    assert_eq!(decisions[0].diff.as_deref(), Some("-old\n+new\n"));
    let error = store
        .record_decision(&decision("r1", DecisionKind::Approve, 2_000))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("already decided"), "{error}");
}

#[tokio::test]
async fn all_decisions_are_every_runs_in_the_order_recorded() {
    let directory = tempfile::tempdir().unwrap();
    let store = open(directory.path()).await;
    store.create_run(&new_run("r1", 100)).await.unwrap();
    store.create_run(&new_run("r2", 100)).await.unwrap();
    let first = store
        .record_decision(&decision("r2", DecisionKind::Modify, 3))
        .await
        .unwrap();
    let second = store
        .record_decision(&decision("r1", DecisionKind::Reject, 2))
        .await
        .unwrap();
    let third = store
        .record_decision(&decision("r2", DecisionKind::Approve, 1))
        .await
        .unwrap();

    let all = store.all_decisions().await.unwrap();
    assert_eq!(
        all.iter()
            .map(|decision| (decision.id, decision.run_id.as_str()))
            .collect::<Vec<_>>(),
        [
            (Some(first), "r2"),
            (Some(second), "r1"),
            (Some(third), "r2")
        ]
    );
    assert_eq!(all[1], store.decisions("r1").await.unwrap()[0]);
}

#[tokio::test]
async fn latest_approval_is_the_newest_recorded() {
    let directory = tempfile::tempdir().unwrap();
    let store = open(directory.path()).await;
    store.create_run(&new_run("r1", 100)).await.unwrap();
    assert_eq!(
        store
            .latest_approval("specs/001-login", "spec")
            .await
            .unwrap(),
        None
    );

    store
        .record_approval(&approval("spec", "hash-1", 10))
        .await
        .unwrap();
    store
        .record_approval(&approval("spec", "hash-2", 20))
        .await
        .unwrap();
    let from_gate = ApprovalRecord {
        subject: "artifact:plan.md".to_owned(),
        path: "specs/001-login/plan.md".to_owned(),
        run_id: Some("r1".to_owned()),
        stage: Some("plan".to_owned()),
        ..approval("artifact:plan.md", "hash-plan", 30)
    };
    store.record_approval(&from_gate).await.unwrap();
    let mut other_feature = approval("spec", "hash-other", 40);
    other_feature.feature_dir = "specs/002-other".to_owned();
    store.record_approval(&other_feature).await.unwrap();

    assert_eq!(
        store
            .latest_approval("specs/001-login", "spec")
            .await
            .unwrap(),
        Some(approval("spec", "hash-2", 20))
    );
    assert_eq!(
        store
            .latest_approval("specs/001-login", "artifact:plan.md")
            .await
            .unwrap(),
        Some(from_gate)
    );
    assert_eq!(
        store
            .latest_approval("specs/001-login", "implementation")
            .await
            .unwrap(),
        None
    );

    let mut unknown_run = approval("spec", "hash-3", 50);
    unknown_run.run_id = Some("nope".to_owned());
    let error = store.record_approval(&unknown_run).await.unwrap_err();
    assert!(matches!(error, StoreError::UnknownRun { .. }), "{error}");
}

#[tokio::test]
async fn reopening_keeps_the_data() {
    let directory = tempfile::tempdir().unwrap();
    {
        let store = open(directory.path()).await;
        store.create_run(&new_run("r1", 100)).await.unwrap();
        store
            .append_event("r1", "run_started", &json!({}))
            .await
            .unwrap();
        store.open_gate(&gate("r1", "plan", 10)).await.unwrap();
        store
            .record_decision(&decision("r1", DecisionKind::Approve, 11))
            .await
            .unwrap();
        store
            .record_approval(&approval("spec", "hash-1", 12))
            .await
            .unwrap();
        store.close().await;
    }
    // Without an explicit close too: the WAL must be read back on the next open.
    let store = open(directory.path()).await;
    store
        .append_event("r1", "stage_started", &json!({ "stage": "plan" }))
        .await
        .unwrap();
    drop(store);

    let store = open(directory.path()).await;
    assert_eq!(store.run("r1").await.unwrap().unwrap().id, "r1");
    let kinds: Vec<String> = store
        .events("r1")
        .await
        .unwrap()
        .into_iter()
        .map(|event| event.kind)
        .collect();
    assert_eq!(kinds, ["run_started", "stage_started"]);
    assert_eq!(store.pending_gates().await.unwrap().len(), 1);
    assert_eq!(store.decisions("r1").await.unwrap().len(), 1);
    assert!(
        store
            .latest_approval("specs/001-login", "spec")
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn a_newer_schema_is_refused_and_left_untouched() {
    let directory = tempfile::tempdir().unwrap();
    let state_dir = directory.path().join(".stagegate");
    let store = Store::open(&state_dir).await.unwrap();
    store.create_run(&new_run("r1", 100)).await.unwrap();
    store.close().await;

    // What a future stagegate would leave: a higher user_version, in rollback-journal mode.
    let database = state_dir.join("state.db");
    execute_by_hand(
        &database,
        "PRAGMA journal_mode = DELETE; PRAGMA user_version = 99;",
    )
    .await;
    let before = std::fs::read(&database).unwrap();

    let error = Store::open(&state_dir).await.unwrap_err();

    match &error {
        StoreError::NewerSchema {
            path,
            found,
            supported,
        } => {
            assert_eq!(path, &database);
            assert_eq!(*found, 99);
            assert!(*supported < 99);
        }
        other => panic!("expected NewerSchema, got {other:?}"),
    }
    assert!(error.to_string().contains("upgrade stagegate"), "{error}");
    assert_eq!(std::fs::read(&database).unwrap(), before);
}

#[tokio::test]
async fn a_garbage_file_is_corrupt_and_left_untouched() {
    let directory = tempfile::tempdir().unwrap();
    let state_dir = directory.path().join(".stagegate");
    std::fs::create_dir_all(&state_dir).unwrap();
    let database = state_dir.join("state.db");
    let garbage: Vec<u8> = (0..8192u32).map(|index| (index * 7 + 3) as u8).collect();
    std::fs::write(&database, &garbage).unwrap();

    let error = Store::open(&state_dir).await.unwrap_err();

    assert!(
        matches!(&error, StoreError::Corrupt { path, .. } if *path == database),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains(&database.display().to_string()),
        "{message}"
    );
    assert!(message.contains("move"), "{message}");
    assert_eq!(std::fs::read(&database).unwrap(), garbage);
    assert!(!state_dir.join("state.db-wal").exists());
}

#[tokio::test]
async fn a_short_text_file_is_corrupt_too() {
    let directory = tempfile::tempdir().unwrap();
    let state_dir = directory.path().join(".stagegate");
    std::fs::create_dir_all(&state_dir).unwrap();
    let database = state_dir.join("state.db");
    std::fs::write(&database, b"not a database\n").unwrap();

    let error = Store::open(&state_dir).await.unwrap_err();

    assert!(matches!(error, StoreError::Corrupt { .. }), "{error:?}");
    assert_eq!(std::fs::read(&database).unwrap(), b"not a database\n");
}

#[tokio::test]
async fn another_programs_database_is_refused_and_left_untouched() {
    let directory = tempfile::tempdir().unwrap();
    let state_dir = directory.path().join(".stagegate");
    std::fs::create_dir_all(&state_dir).unwrap();
    let database = state_dir.join("state.db");
    execute_by_hand(
        &database,
        "CREATE TABLE notes (text TEXT); INSERT INTO notes VALUES ('mine');",
    )
    .await;
    let before = std::fs::read(&database).unwrap();

    let error = Store::open(&state_dir).await.unwrap_err();

    assert!(matches!(error, StoreError::Corrupt { .. }), "{error:?}");
    assert_eq!(std::fs::read(&database).unwrap(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_from_two_handles_all_succeed() {
    let directory = tempfile::tempdir().unwrap();
    let first = open(directory.path()).await;
    let second = open(directory.path()).await;
    first.create_run(&new_run("r1", 100)).await.unwrap();

    let mut tasks = tokio::task::JoinSet::new();
    for (handle, store) in [first.clone(), second.clone()].into_iter().enumerate() {
        for index in 0..50 {
            let store = store.clone();
            tasks.spawn(async move {
                store
                    .append_event("r1", "tick", &json!({ "handle": handle, "index": index }))
                    .await
            });
        }
    }
    let mut seqs = Vec::new();
    while let Some(result) = tasks.join_next().await {
        seqs.push(result.unwrap().unwrap());
    }
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs.len(), 100);

    let events = second.events("r1").await.unwrap();
    assert_eq!(events.len(), 100);
    assert!(events.windows(2).all(|pair| pair[0].seq < pair[1].seq));
}

#[tokio::test]
async fn error_messages_name_the_file_and_the_fix() {
    let directory = tempfile::tempdir().unwrap();
    let state_dir = directory.path().join(".stagegate");
    std::fs::create_dir_all(&state_dir).unwrap();
    std::fs::write(state_dir.join("state.db"), [0xffu8; 4096]).unwrap();
    let message = Store::open(&state_dir).await.unwrap_err().to_string();
    let path = state_dir.join("state.db").display().to_string();
    assert_eq!(
        message,
        format!(
            "{path} is not a readable stagegate database: file is not a database\n\
             hint: move {path} aside (for example to {path}.broken) and run again; \
             stagegate never deletes or overwrites it"
        )
    );
}

#[tokio::test]
async fn cache_entries_round_trip_and_replace_on_the_same_key() {
    let directory = tempfile::tempdir().unwrap();
    let store = open(directory.path()).await;
    let entry = cache_entry("k1", "r1", 2_000_000);
    store.put_cache(&entry).await.unwrap();
    assert_eq!(store.cache_entries(1_000_000, None).await.unwrap(), [entry]);

    let replacement = CacheEntry {
        phase: "review".to_owned(),
        output: "newer output".to_owned(),
        output_hash: "newer hash".to_owned(),
        ..cache_entry("k1", "r2", 3_000_000)
    };
    store.put_cache(&replacement).await.unwrap();
    assert_eq!(
        store.cache_entries(1_000_000, None).await.unwrap(),
        [replacement]
    );
}

#[tokio::test]
async fn cache_entries_skip_expired_ones_except_the_runs_own() {
    let directory = tempfile::tempdir().unwrap();
    let store = open(directory.path()).await;
    let valid = cache_entry("a-valid", "r1", 2_000);
    let expired_of_r1 = cache_entry("b-expired-r1", "r1", 1_000);
    let expired_of_r2 = cache_entry("c-expired-r2", "r2", 1_000);
    let expiring_now = cache_entry("d-expiring-now", "r2", 1_500);
    for entry in [&valid, &expired_of_r1, &expired_of_r2, &expiring_now] {
        store.put_cache(entry).await.unwrap();
    }

    // Valid means `expires_at_ms > now_ms`: an entry expiring at this very instant is gone.
    assert_eq!(
        store.cache_entries(1_500, None).await.unwrap(),
        std::slice::from_ref(&valid)
    );
    assert_eq!(
        store.cache_entries(1_500, Some("r1")).await.unwrap(),
        [valid.clone(), expired_of_r1.clone()]
    );
    assert_eq!(
        store.cache_entries(1_500, Some("r3")).await.unwrap(),
        std::slice::from_ref(&valid)
    );
    assert_eq!(
        store.cache_entries(500, None).await.unwrap(),
        [valid, expired_of_r1, expired_of_r2, expiring_now]
    );
}

#[tokio::test]
async fn a_batch_naming_an_unknown_run_is_refused_whole() {
    let directory = tempfile::tempdir().unwrap();
    let store = open(directory.path()).await;
    store.create_run(&new_run("r1", 1)).await.unwrap();
    let event = |run_id: &str| BatchWrite::Event {
        run_id: run_id.to_owned(),
        kind: "run_started".to_owned(),
        payload_json: "{}".to_owned(),
    };
    // Errors from the writer's own connection read as the pool's do.
    let error = store
        .write_batch(&[event("r1"), answer("r1", "k1", "one"), event("nope")])
        .unwrap_err();
    assert!(matches!(&error, StoreError::UnknownRun { .. }), "{error}");
    assert!(store.events("r1").await.unwrap().is_empty());
    assert!(store.answers("r1").await.unwrap().is_empty());
    store.write_batch(&[event("r1")]).unwrap();
    assert_eq!(store.events("r1").await.unwrap().len(), 1);
}

#[tokio::test]
async fn of_cache_entries_for_one_key_in_one_commit_the_last_counts() {
    let directory = tempfile::tempdir().unwrap();
    let store = open(directory.path()).await;
    store.create_run(&new_run("r1", 1)).await.unwrap();
    let first = cache_entry("k1", "r1", 2_000_000);
    let second = CacheEntry {
        output: "second output".to_owned(),
        ..cache_entry("k1", "r1", 2_500_000)
    };
    store
        .write_batch(&[
            BatchWrite::Cache(first),
            BatchWrite::Cache(cache_entry("k0", "r1", 2_000_000)),
            BatchWrite::Cache(second.clone()),
        ])
        .unwrap();
    assert_eq!(
        store.cache_entries(1_000_000, None).await.unwrap(),
        [cache_entry("k0", "r1", 2_000_000), second]
    );
}

#[tokio::test]
async fn a_runs_answers_keep_the_first_for_each_key_in_the_order_recorded() {
    let directory = tempfile::tempdir().unwrap();
    let store = open(directory.path()).await;
    for id in ["r1", "r2"] {
        store.create_run(&new_run(id, 1)).await.unwrap();
    }
    store
        .record_answer("r1", "k2", "first of k2")
        .await
        .unwrap();
    store
        .write_batch(&[
            answer("r1", "k1", "first of k1"),
            answer("r2", "k1", "another run's"),
            answer("r1", "k2", "second of k2"),
            answer("r1", "k1", "second of k1"),
        ])
        .unwrap();
    store
        .record_answer("r1", "k1", "third of k1")
        .await
        .unwrap();
    assert_eq!(
        store.answers("r1").await.unwrap(),
        [
            ("k2".to_owned(), "first of k2".to_owned()),
            ("k1".to_owned(), "first of k1".to_owned()),
        ]
    );
    assert_eq!(
        store.answers("r2").await.unwrap(),
        [("k1".to_owned(), "another run's".to_owned())]
    );
}

fn answer(run_id: &str, key: &str, output: &str) -> BatchWrite {
    BatchWrite::Answer {
        run_id: run_id.to_owned(),
        key: key.to_owned(),
        output: output.to_owned(),
    }
}

#[tokio::test]
async fn a_version_9_database_keeps_its_answers_and_cache_entries() {
    // What stagegate with schema version 9 left: answers and cache entries keyed by call key.
    let sql = format!(
        "{}PRAGMA user_version = 9;\n\
         INSERT INTO runs (id, feature_dir, stages_json, state, settings_json, created_at_ms, \
         updated_at_ms) VALUES ('r1', 'specs/001-x', '[]', 'running', '{{}}', 1, 1);\n\
         INSERT INTO answers (run_id, key, output) VALUES ('r1', 'k2', 'two'), ('r1', 'k1', 'one');\n\
         INSERT INTO cache (key, phase, output, output_hash, run_id, created_at_ms, expires_at_ms) \
         VALUES ('k1', 'agent', 'one', 'h1', 'r1', 10, 2000), \
         ('k2', 'agent', 'two', 'h2', 'r1', 5, 1000);",
        schema_through(9)
    );
    let (_directory, state_dir, database) = database_left_by(&sql).await;

    let store = Store::open(&state_dir).await.unwrap();
    assert_eq!(
        store.answers("r1").await.unwrap(),
        [
            ("k2".to_owned(), "two".to_owned()),
            ("k1".to_owned(), "one".to_owned())
        ]
    );
    let keys = |entries: Vec<CacheEntry>| -> Vec<String> {
        entries.into_iter().map(|entry| entry.key).collect()
    };
    assert_eq!(
        keys(store.cache_entries(1_500, None).await.unwrap()),
        ["k1"]
    );
    assert_eq!(
        keys(store.cache_entries(1_500, Some("r1")).await.unwrap()),
        ["k1", "k2"]
    );
    // A newer entry for a migrated key supersedes it; pruning still goes by expiry.
    store
        .put_cache(&CacheEntry {
            output: "one, again".to_owned(),
            ..cache_entry("k1", "r1", 3_000)
        })
        .await
        .unwrap();
    let entries = store.cache_entries(1_500, None).await.unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].output, "one, again");
    assert_eq!(store.prune_cache(2_500).await.unwrap(), 2);
    store.close().await;
    assert_eq!(
        integer_by_hand(&database, "PRAGMA user_version").await,
        newest_schema_version()
    );
}

#[tokio::test]
async fn a_version_11_run_keeps_its_settings_apart_from_its_row() {
    // What stagegate with schema version 11 left: the settings in the run's row.
    let sql = format!(
        "{}PRAGMA user_version = 11;\n\
         INSERT INTO runs (id, feature_dir, stages_json, state, settings_json, created_at_ms, \
         updated_at_ms) VALUES ('r1', 'specs/001-x', '[\"plan\"]', 'running', \
         '{{\"concurrency\": 3}}', 1, 1);",
        schema_through(11)
    );
    let (_directory, state_dir, database) = database_left_by(&sql).await;

    let store = Store::open(&state_dir).await.unwrap();
    let settings = json!({ "concurrency": 3 });
    assert_eq!(
        store
            .run_with_settings("r1")
            .await
            .unwrap()
            .unwrap()
            .settings_json,
        settings
    );
    store
        .update_run("r1", RunState::AwaitingDecision, Some("plan"))
        .await
        .unwrap();
    let run = store.run_with_settings("r1").await.unwrap().unwrap();
    assert_eq!(run.state, RunState::AwaitingDecision);
    assert_eq!(run.settings_json, settings);
    store.close().await;
    assert_eq!(
        integer_by_hand(
            &database,
            "SELECT count(*) FROM pragma_table_info('runs') WHERE name = 'settings_json'"
        )
        .await,
        0
    );
}

#[tokio::test]
async fn prune_and_clear_count_what_they_delete() {
    let directory = tempfile::tempdir().unwrap();
    let store = open(directory.path()).await;
    for (key, expires_at_ms) in [("k1", 1_000), ("k2", 1_500), ("k3", 2_000), ("k4", 3_000)] {
        store
            .put_cache(&cache_entry(key, "r1", expires_at_ms))
            .await
            .unwrap();
    }

    assert_eq!(store.prune_cache(500).await.unwrap(), 0);
    assert_eq!(store.prune_cache(1_500).await.unwrap(), 2);
    assert_eq!(store.prune_cache(1_500).await.unwrap(), 0);
    // Pruning removes a run's own expired entries too: it is for the old, not for resume.
    let left = store.cache_entries(0, None).await.unwrap();
    let keys: Vec<&str> = left.iter().map(|entry| entry.key.as_str()).collect();
    assert_eq!(keys, ["k3", "k4"]);

    assert_eq!(store.clear_cache().await.unwrap(), 2);
    assert_eq!(store.clear_cache().await.unwrap(), 0);
    assert!(store.cache_entries(0, Some("r1")).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_free_lock_is_taken_and_listed() {
    let directory = tempfile::tempdir().unwrap();
    let store = open(directory.path()).await;
    assert!(store.locks().await.unwrap().is_empty());

    let taken = store
        .acquire_lock(&lock("r1", 41), |_| panic!("nobody to ask about"))
        .await
        .unwrap();
    assert_eq!(taken, None);
    assert_eq!(store.locks().await.unwrap(), [lock("r1", 41)]);

    // Another stage of the same feature is another lock.
    let prep = LockRecord {
        stage: "prep".to_owned(),
        ..lock("r2", 42)
    };
    assert_eq!(store.acquire_lock(&prep, |_| true).await.unwrap(), None);
    assert_eq!(store.locks().await.unwrap(), [lock("r1", 41), prep]);
}

#[tokio::test]
async fn a_lock_held_by_a_live_run_is_refused_with_its_name() {
    let directory = tempfile::tempdir().unwrap();
    let store = open(directory.path()).await;
    store.acquire_lock(&lock("r1", 41), |_| true).await.unwrap();

    let error = store
        .acquire_lock(&lock("r2", 42), |holder| {
            assert_eq!(holder, &lock("r1", 41));
            true
        })
        .await
        .unwrap_err();

    match &error {
        StoreError::Locked {
            feature_dir,
            stage,
            run_id,
            pid,
        } => {
            assert_eq!(feature_dir, "specs/001-login");
            assert_eq!(stage, "plan");
            assert_eq!(run_id, "r1");
            assert_eq!(*pid, 41);
        }
        other => panic!("expected Locked, got {other:?}"),
    }
    let message = error.to_string();
    assert!(message.contains("run r1"), "{message}");
    assert!(message.contains("41"), "{message}");
    assert!(message.contains("\nhint: wait for run r1"), "{message}");
    assert!(message.contains("`stagegate status`"), "{message}");
    assert!(message.contains("`stagegate unlock r1`"), "{message}");
    // The pid may belong to another PID namespace or another machine: never a hint to kill it.
    assert!(!message.contains("kill"), "{message}");
    assert_eq!(store.locks().await.unwrap(), [lock("r1", 41)]);
}

#[tokio::test]
async fn a_lock_of_a_dead_run_is_taken_over_and_its_holder_returned() {
    let directory = tempfile::tempdir().unwrap();
    let store = open(directory.path()).await;
    store.acquire_lock(&lock("r1", 41), |_| true).await.unwrap();

    let taken_over = store
        .acquire_lock(&lock("r2", 42), |holder| holder.pid != 41)
        .await
        .unwrap();

    assert_eq!(taken_over, Some(lock("r1", 41)));
    assert_eq!(store.locks().await.unwrap(), [lock("r2", 42)]);
}

#[tokio::test]
async fn the_same_run_takes_its_own_lock_again() {
    let directory = tempfile::tempdir().unwrap();
    let store = open(directory.path()).await;
    store.acquire_lock(&lock("r1", 41), |_| true).await.unwrap();

    // The same process again: fine, whatever is_alive says.
    let again = LockRecord {
        acquired_at_ms: 2_000,
        ..lock("r1", 41)
    };
    assert_eq!(store.acquire_lock(&again, |_| true).await.unwrap(), None);
    assert_eq!(store.locks().await.unwrap(), [again]);

    // `resume` from a new process after the first one died: taken, and not reported as taken
    // over (the caller must not mark its own run interrupted).
    assert_eq!(
        store
            .acquire_lock(&lock("r1", 43), |holder| holder.pid != 41)
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.locks().await.unwrap(), [lock("r1", 43)]);

    // A second live process of the same run (two `resume`s at once) is refused.
    let error = store
        .acquire_lock(&lock("r1", 44), |_| true)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, StoreError::Locked { run_id, pid: 43, .. } if run_id == "r1"),
        "{error:?}"
    );
}

#[tokio::test]
async fn only_the_holder_releases_a_lock() {
    let directory = tempfile::tempdir().unwrap();
    let store = open(directory.path()).await;
    store.acquire_lock(&lock("r1", 41), |_| true).await.unwrap();

    store
        .release_lock("specs/001-login", "plan", "r2")
        .await
        .unwrap();
    store
        .release_lock("specs/001-login", "prep", "r1")
        .await
        .unwrap();
    assert_eq!(store.locks().await.unwrap(), [lock("r1", 41)]);

    store
        .release_lock("specs/001-login", "plan", "r1")
        .await
        .unwrap();
    assert!(store.locks().await.unwrap().is_empty());
    // Releasing again is not an error.
    store
        .release_lock("specs/001-login", "plan", "r1")
        .await
        .unwrap();

    // Free again: the next run takes it without anyone to take over.
    assert_eq!(
        store.acquire_lock(&lock("r2", 42), |_| true).await.unwrap(),
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_handles_racing_for_a_lock_exactly_one_wins() {
    let directory = tempfile::tempdir().unwrap();
    for round in 0..20 {
        let state_dir = directory.path().join(format!("round-{round}"));
        let first = open(&state_dir).await;
        let second = open(&state_dir).await;
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(2));

        let mut tasks = tokio::task::JoinSet::new();
        for (index, store) in [first.clone(), second.clone()].into_iter().enumerate() {
            let barrier = barrier.clone();
            tasks.spawn(async move {
                let run_id = format!("r{index}");
                let pid = 100 + u32::try_from(index).unwrap();
                barrier.wait().await;
                let result = store.acquire_lock(&lock(&run_id, pid), |_| true).await;
                (run_id, result)
            });
        }
        let mut winners = Vec::new();
        let mut refused = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            match joined.unwrap() {
                (run_id, Ok(None)) => winners.push(run_id),
                (run_id, Ok(Some(holder))) => panic!("{run_id} took over {holder:?}"),
                (_, Err(StoreError::Locked { run_id, .. })) => refused.push(run_id),
                (run_id, Err(error)) => panic!("{run_id}: {error:?}"),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}");
        // The loser was told the winner's name.
        assert_eq!(refused, winners, "round {round}");
        let locks = second.locks().await.unwrap();
        assert_eq!(locks.len(), 1);
        assert_eq!(locks[0].run_id, winners[0]);
        first.close().await;
        second.close().await;
    }
}

/// Reads one integer from `database` through a plain connection.
async fn integer_by_hand(database: &Path, sql: &'static str) -> i64 {
    use sqlx::{ConnectOptions, Connection};
    let mut connection = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(database)
        .connect()
        .await
        .unwrap();
    let value = sqlx::query_scalar(sql)
        .fetch_one(&mut connection)
        .await
        .unwrap();
    connection.close().await.unwrap();
    value
}

#[tokio::test]
async fn a_version_1_database_gains_the_lock_holders_identity_and_keeps_its_locks() {
    let directory = tempfile::tempdir().unwrap();
    let state_dir = directory.path().join(".stagegate");
    std::fs::create_dir_all(&state_dir).unwrap();
    let database = state_dir.join("state.db");
    // What stagegate with schema version 1 left: a lock naming only a pid.
    execute_by_hand(
        &database,
        concat!(
            include_str!("../migrations/0001_initial.sql"),
            "PRAGMA user_version = 1;\n",
            "INSERT INTO locks (feature_dir, stage, run_id, pid, acquired_at_ms) \
             VALUES ('specs/001-login', 'plan', 'r1', 41, 1000);"
        ),
    )
    .await;

    let store = Store::open(&state_dir).await.unwrap();
    let old = LockRecord {
        boot_id: None,
        start_ticks: None,
        ..lock("r1", 41)
    };
    assert_eq!(store.locks().await.unwrap(), std::slice::from_ref(&old));

    // The old row is judged by what it has; a dead holder is taken over, and the new row carries
    // the whole identity.
    let taken_over = store
        .acquire_lock(&lock("r2", 42), |holder| {
            assert_eq!(holder, &old);
            false
        })
        .await
        .unwrap();
    assert_eq!(taken_over, Some(old));
    assert_eq!(store.locks().await.unwrap(), [lock("r2", 42)]);
    store.close().await;
    assert_eq!(
        integer_by_hand(&database, "PRAGMA user_version").await,
        newest_schema_version(),
        "migrated to the newest version"
    );

    // Opening again migrates nothing more and changes nothing.
    let store = Store::open(&state_dir).await.unwrap();
    assert_eq!(store.locks().await.unwrap(), [lock("r2", 42)]);
    store.close().await;
}

#[tokio::test]
async fn a_lock_keeps_its_holders_boot_id_and_start_time_or_their_absence() {
    let directory = tempfile::tempdir().unwrap();
    let store = open(directory.path()).await;
    let with_identity = LockRecord {
        boot_id: Some("6a1c0f2e-1b7d-4e53-9c1a-0f0e5d2b7c44".to_owned()),
        start_ticks: Some(u64::from(u32::MAX) * 1_000),
        ..lock("r1", 1)
    };
    let without = LockRecord {
        stage: "prep".to_owned(),
        boot_id: None,
        start_ticks: None,
        ..lock("r2", 2)
    };
    store.acquire_lock(&with_identity, |_| true).await.unwrap();
    store.acquire_lock(&without, |_| true).await.unwrap();
    assert_eq!(store.locks().await.unwrap(), [with_identity, without]);
}

/// Every container's first process is pid 1: the same pid in the same run is the same process
/// only if it also started at the same time.
#[tokio::test]
async fn the_same_pid_of_the_same_run_with_another_start_time_is_another_process() {
    let directory = tempfile::tempdir().unwrap();
    let store = open(directory.path()).await;
    let first = LockRecord {
        start_ticks: Some(100),
        ..lock("r1", 1)
    };
    store.acquire_lock(&first, |_| true).await.unwrap();
    let second = LockRecord {
        start_ticks: Some(200),
        ..lock("r1", 1)
    };

    let error = store
        .acquire_lock(&second, |holder| {
            assert_eq!(holder, &first);
            true
        })
        .await
        .unwrap_err();
    assert!(
        matches!(&error, StoreError::Locked { run_id, pid: 1, .. } if run_id == "r1"),
        "{error:?}"
    );
    assert_eq!(store.locks().await.unwrap(), std::slice::from_ref(&first));

    assert_eq!(store.acquire_lock(&second, |_| false).await.unwrap(), None);
    assert_eq!(store.locks().await.unwrap(), std::slice::from_ref(&second));
    // The holder itself again: not asked about.
    assert_eq!(
        store
            .acquire_lock(&second, |_| panic!("the holder itself"))
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn removing_a_runs_locks_takes_all_of_them_unless_a_holder_lives() {
    let directory = tempfile::tempdir().unwrap();
    let store = open(directory.path()).await;
    let plan = lock("r1", 41);
    let prep = LockRecord {
        stage: "prep".to_owned(),
        ..lock("r1", 43)
    };
    let other = LockRecord {
        feature_dir: "specs/002-other".to_owned(),
        ..lock("r2", 42)
    };
    for held in [&plan, &prep, &other] {
        store.acquire_lock(held, |_| true).await.unwrap();
    }

    // One live holder: nothing is removed, and the live ones are named.
    assert_eq!(
        store
            .remove_run_locks("r1", |holder| holder.pid == 43)
            .await
            .unwrap(),
        RunUnlock::HeldByLiveProcess(vec![prep.clone()])
    );
    assert_eq!(store.locks().await.unwrap().len(), 3);

    // Forced (nobody counts as alive): every lock of r1, none of r2.
    assert_eq!(
        store.remove_run_locks("r1", |_| false).await.unwrap(),
        RunUnlock::Removed(vec![plan, prep])
    );
    assert_eq!(store.locks().await.unwrap(), [other]);

    // Nothing held: nothing removed, not an error.
    assert_eq!(
        store
            .remove_run_locks("r1", |_| panic!("nobody to ask about"))
            .await
            .unwrap(),
        RunUnlock::Removed(Vec::new())
    );
}

/// The migrations up to schema `version`, concatenated: what a stagegate of that version made.
fn schema_through(version: usize) -> String {
    let mut files: Vec<std::path::PathBuf> =
        std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "sql"))
            .collect();
    files.sort();
    files[..version]
        .iter()
        .map(|path| std::fs::read_to_string(path).unwrap())
        .collect()
}

/// The newest schema version: one per migration file.
fn newest_schema_version() -> i64 {
    let migrations = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
        .unwrap()
        .filter(|entry| {
            entry
                .as_ref()
                .is_ok_and(|entry| entry.path().extension().is_some_and(|ext| ext == "sql"))
        })
        .count();
    i64::try_from(migrations).unwrap()
}

/// The number of events in a copy of `database` taken without its write-ahead log, or `None`
/// when that copy has no events table yet: what the database file alone holds.
async fn events_in_file_alone(database: &Path) -> Option<i64> {
    use sqlx::{ConnectOptions, Connection};
    let copy = database.with_file_name("file-alone.db");
    std::fs::copy(database, &copy).unwrap();
    let mut connection = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&copy)
        .connect()
        .await
        .unwrap();
    let count = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&mut connection)
        .await
        .ok();
    connection.close().await.unwrap();
    std::fs::remove_file(&copy).unwrap();
    count
}

#[tokio::test]
async fn a_passive_fold_copies_the_committed_log_into_the_database_file() {
    let directory = tempfile::tempdir().unwrap();
    let store = open(directory.path()).await;
    store.create_run(&new_run("r1", 100)).await.unwrap();
    store
        .append_event("r1", "run_started", &json!(null))
        .await
        .unwrap();
    let database = directory.path().join(".stagegate").join("state.db");
    assert_ne!(events_in_file_alone(&database).await, Some(1));

    assert!(store.fold_log_passively().await.unwrap());

    assert_eq!(events_in_file_alone(&database).await, Some(1));
    assert_eq!(store.events("r1").await.unwrap().len(), 1);
}
