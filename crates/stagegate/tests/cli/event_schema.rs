//! `--json` events of real runs conform to the published schema, `docs/events.schema.json`
//! (checked with `json_schema.rs`): each line, of each kind these runs produce.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use crate::harness::{EXIT_AWAITING_DECISION, EXIT_DONE, EXIT_STAGE_FAILED, TestRepo};
use crate::json_schema::violations;

fn schema() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/events.schema.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("read {}: {error}", path.display()));
    serde_json::from_str(&text)
        .unwrap_or_else(|error| panic!("{} is not JSON: {error}", path.display()))
}

#[test]
fn every_json_event_of_real_runs_conforms_to_the_schema() {
    let schema = schema();
    let repo = TestRepo::with_approved_spec()
        .behaviour("solution-architect", "fail 1")
        .behaviour("estimation-scope-analyst", "fail-always")
        .behaviour("main-agent", "verdict-rework-once");
    let mut lines = Vec::new();
    let first = repo
        .run(&["run", "plan", "--no-input", "--json"])
        .expect_code(EXIT_AWAITING_DECISION);
    let run_id = first.run_id();
    lines.extend(first.json_lines());
    let modified = repo
        .run(&[
            "modify",
            &run_id,
            "--feedback",
            "shorter",
            "--no-input",
            "--json",
        ])
        .expect_code(EXIT_AWAITING_DECISION);
    lines.extend(modified.json_lines());
    repo.run(&["approve", &run_id]).expect_code(EXIT_DONE);
    // Going on after the approval finishes the stage and the run.
    let resumed = repo
        .run(&["resume", &run_id, "--no-input", "--json"])
        .expect_code(EXIT_DONE);
    lines.extend(resumed.json_lines());
    // A run after the approval reads the published plan.md as the existing plan, so it asks
    // its agents again; the unchanged run after it answers from the cache.
    repo.run(&["run", "plan", "--no-input"])
        .expect_code(EXIT_AWAITING_DECISION);
    let cached = repo
        .run(&["run", "plan", "--no-input", "--json"])
        .expect_code(EXIT_AWAITING_DECISION);
    lines.extend(cached.json_lines());
    // A stage that loses its quorum, even one agent at a time, fails.
    for agent in [
        "requirements-analyst",
        "solution-architect",
        "risk-compliance-analyst",
    ] {
        std::fs::write(
            repo.fake_dir.join(format!("{agent}.behaviour")),
            "fail-always\n",
        )
        .expect("write a behaviour");
    }
    let failed = repo
        .run(&["run", "plan", "--no-input", "--refresh", "--json"])
        .expect_code(EXIT_STAGE_FAILED);
    lines.extend(failed.json_lines());

    let mut kinds = BTreeSet::new();
    for line in &lines {
        let problems = violations(&schema, &schema, line);
        assert!(
            problems.is_empty(),
            "{line}\ndoes not conform:\n{}",
            problems.join("\n")
        );
        assert_eq!(line["version"], 1, "{line}");
        kinds.insert(line["event"].as_str().expect("a kind").to_owned());
    }
    for kind in [
        "run_started",
        "stage_started",
        "inputs_scored",
        "attempt_started",
        "attempt_finished",
        "retry_scheduled",
        "cache_hit",
        "agents_finished",
        "quorum_met",
        "artifact_synthesized",
        "qa_verdict",
        "gate_requested",
        "gate_waiting",
        "quorum_lost",
        "sequential_pass_started",
        "stage_finished",
        "run_finished",
    ] {
        assert!(kinds.contains(kind), "no {kind} event among {kinds:?}");
    }
}

#[test]
fn the_schema_names_each_kind_once_and_every_reference_resolves() {
    let schema = schema();
    let alternatives = schema["oneOf"].as_array().expect("oneOf");
    let mut kinds = BTreeSet::new();
    for alternative in alternatives {
        let reference = alternative["$ref"].as_str().expect("a $ref");
        let name = reference.strip_prefix("#/$defs/").expect("a local $ref");
        let definition = &schema["$defs"][name];
        assert_eq!(definition["properties"]["event"]["const"], name, "{name}");
        assert!(kinds.insert(name.to_owned()), "{name} twice");
    }
    assert_eq!(kinds.len(), 23, "one alternative per event kind: {kinds:?}");
    // An event of a kind the schema does not know is refused.
    let unknown =
        serde_json::json!({"version": 1, "event": "gate_escalated", "run_id": "r", "at_ms": 1});
    assert!(!violations(&schema, &schema, &unknown).is_empty());
}
