//! `--log-format`: every event of a run as a structured log record on stderr.

use serde_json::Value;

use super::harness::TestRepo;

#[test]
fn json_logs_carry_the_run_stage_phase_agent_and_attempt_of_every_attempt() {
    let repo = TestRepo::with_approved_spec();
    let outcome = repo
        .run(&["run", "plan", "--no-input", "--log-format", "json"])
        .expect_code(10);
    let records: Vec<Value> = outcome
        .stderr
        .lines()
        .filter(|line| line.starts_with('{'))
        .map(|line| serde_json::from_str(line).expect("each log line is one JSON object"))
        .collect();
    let finished: Vec<&Value> = records
        .iter()
        .filter(|record| record["event"] == "attempt_finished")
        .collect();
    assert!(
        finished.len() >= 7,
        "agents, review, syntheses and QA: {records:#?}"
    );
    let requirements = finished
        .iter()
        .find(|record| record["agent"] == "requirements-analyst")
        .expect("a record for requirements-analyst");
    assert_eq!(requirements["stage"], "plan");
    assert_eq!(requirements["phase"], "agent");
    assert_eq!(requirements["attempt"], 1);
    assert_eq!(requirements["level"], "INFO");
    let run_id = requirements["run_id"].as_str().expect("a run id");
    assert!(
        records
            .iter()
            .any(|record| record["event"] == "gate_waiting" && record["run_id"] == run_id),
        "the gate is logged too"
    );
    assert!(
        !outcome.stderr.contains("✓ agent"),
        "logs replace the live display on stderr: {outcome:?}"
    );
}

#[test]
fn a_failed_attempt_is_logged_as_a_warning() {
    let repo = TestRepo::with_approved_spec().behaviour("solution-architect", "fail-always");
    let outcome = repo.run(&["run", "plan", "--no-input", "--log-format", "json"]);
    let warned = outcome.stderr.lines().any(|line| {
        line.contains("\"level\":\"WARN\"")
            && line.contains("attempt_finished")
            && line.contains("solution-architect")
    });
    assert!(warned, "{outcome:?}");
}
