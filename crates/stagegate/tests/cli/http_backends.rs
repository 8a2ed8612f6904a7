//! The `openai` and `anthropic` backends end to end: the real binary runs the plan stage against
//! a loopback HTTP server (`loopback_server`) that speaks each API, answers by prompt (QA ends
//! with `VERDICT: PASS`) and records what it was sent. Nothing leaves 127.0.0.1.
//!
//! The key reaches the child process only (`Command::env`); the test process never sets it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{
    EXIT_AWAITING_DECISION, EXIT_STAGE_FAILED, Outcome, PLAN_AGENTS, TestRepo, toml_string,
};
use crate::loopback_server::{LoopbackServer, Recorded, Reply, closed_port};

/// The variable the key is read from, and the key: distinctive enough to search bytes for.
pub(crate) const KEY_VAR: &str = "STAGEGATE_TEST_OPENAI_KEY";
pub(crate) const KEY: &str = "sk-test-SECRET-4f9d2a";

/// The usage every successful answer reports.
const INPUT_TOKENS: u64 = 321;
const OUTPUT_TOKENS: u64 = 54;

/// A repository with an approved spec whose every agent, reviewer, synthesizer and QA is the
/// backend `local` of `kind` at `base_url`, keyed by [`KEY_VAR`], with short timeouts and one
/// retry after 100 ms.
pub(crate) fn http_repo(kind: &str, base_url: &str) -> TestRepo {
    TestRepo::with_approved_spec()
        .set("backends.local", "kind", &toml_string(kind))
        .set("backends.local", "base_url", &toml_string(base_url))
        .set("backends.local", "model", "\"test-model\"")
        .set("backends.local", "api_key_env", &toml_string(KEY_VAR))
        .set("defaults", "backend", "\"local\"")
        .set("defaults", "backoff", "\"100ms\"")
        .set("defaults", "retries", "1")
        .set("timeouts", "default", "\"10s\"")
        .set("timeouts", "review", "\"10s\"")
        .set("timeouts", "synthesis", "\"10s\"")
        .set("timeouts", "qa", "\"10s\"")
}

/// Runs `stagegate ARGS...` in the repository as the harness does, with [`KEY_VAR`] set to `key`
/// in the child's environment only.
pub(crate) fn stagegate(repo: &TestRepo, args: &[&str], key: Option<&str>) -> Outcome {
    match key {
        Some(key) => repo.run_with_env(args, &[(KEY_VAR, key)]),
        None => repo.run(args),
    }
}

/// Whether a prompt is QA's: only its template asks for a `VERDICT: REWORK` line.
fn is_qa(prompt: &str) -> bool {
    prompt.contains("VERDICT: REWORK")
}

/// What the loopback model answers to `prompt`: findings (with a confidence), or for QA a
/// check that ends with `VERDICT: PASS`.
pub(crate) fn answer_for(prompt: &str) -> String {
    if is_qa(prompt) {
        "The artifacts match the spec; nothing to fix.\n\nVERDICT: PASS\n".to_owned()
    } else {
        format!(
            "## Loopback findings\n\n- Read a prompt of {} bytes from the loopback model.\n- Every requirement is covered.\n\nCONFIDENCE: 0.9\n",
            prompt.len()
        )
    }
}

/// `text` in three pieces, so that a stream has several deltas.
fn pieces(text: &str) -> Vec<&str> {
    let mut cuts = vec![0, text.len() / 3, 2 * text.len() / 3, text.len()];
    for cut in &mut cuts {
        while !text.is_char_boundary(*cut) {
            *cut += 1;
        }
    }
    cuts.windows(2)
        .map(|pair| &text[pair[0]..pair[1]])
        .filter(|piece| !piece.is_empty())
        .collect()
}

/// A streamed chat-completions answer: deltas, a finish reason, the usage chunk, `[DONE]`.
pub(crate) fn openai_stream(text: &str) -> Reply {
    let mut data =
        vec![json!({"choices": [{"index": 0, "delta": {"role": "assistant"}}]}).to_string()];
    for piece in pieces(text) {
        data.push(json!({"choices": [{"index": 0, "delta": {"content": piece}}]}).to_string());
    }
    data.push(json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}).to_string());
    data.push(
        json!({"choices": [], "usage": {
            "prompt_tokens": INPUT_TOKENS,
            "completion_tokens": OUTPUT_TOKENS,
            "total_tokens": INPUT_TOKENS + OUTPUT_TOKENS,
        }})
        .to_string(),
    );
    data.push("[DONE]".to_owned());
    Reply::data_events(&data)
}

/// A whole (not streamed) chat-completions answer.
fn openai_json(text: &str) -> Reply {
    Reply::json(
        200,
        &json!({
            "id": "chatcmpl-loopback",
            "object": "chat.completion",
            "model": "test-model",
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }],
            "usage": {
                "prompt_tokens": INPUT_TOKENS,
                "completion_tokens": OUTPUT_TOKENS,
                "total_tokens": INPUT_TOKENS + OUTPUT_TOKENS,
            },
        }),
    )
}

/// A streamed Messages answer, event by event as Anthropic sends them.
pub(crate) fn anthropic_stream(text: &str) -> Reply {
    let mut events = vec![
        (
            "message_start",
            json!({"type": "message_start", "message": {
                "id": "msg_loopback", "type": "message", "role": "assistant",
                "model": "test-model", "content": [], "stop_reason": null,
                "usage": {"input_tokens": INPUT_TOKENS, "output_tokens": 1},
            }}),
        ),
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": 0,
                   "content_block": {"type": "text", "text": ""}}),
        ),
        ("ping", json!({"type": "ping"})),
    ];
    for piece in pieces(text) {
        events.push((
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0,
                   "delta": {"type": "text_delta", "text": piece}}),
        ));
    }
    events.extend([
        (
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 0}),
        ),
        (
            "message_delta",
            json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                   "usage": {"output_tokens": OUTPUT_TOKENS}}),
        ),
        ("message_stop", json!({"type": "message_stop"})),
    ]);
    Reply::named_events(&events)
}

/// The `status RUN --json` summaries by `(phase, agent)`.
fn summaries(status: &Value) -> BTreeMap<(String, String), Value> {
    status["agents"]
        .as_array()
        .unwrap_or_else(|| panic!("status RUN --json has agents: {status:#}"))
        .iter()
        .map(|summary| {
            let phase = summary["phase"].as_str().expect("a phase").to_owned();
            let agent = summary["agent"].as_str().expect("an agent").to_owned();
            ((phase, agent), summary.clone())
        })
        .collect()
}

/// Every agent of the stage answered once, and each summary carries the server's token counts:
/// exactly one answer's worth for the parallel agents, whole answers' worth for the rest (the
/// synthesizer is asked once per artifact).
fn assert_tokens_recorded(status: &Value) {
    let summaries = summaries(status);
    for agent in PLAN_AGENTS {
        let summary = summaries
            .get(&("agent".to_owned(), agent.to_owned()))
            .unwrap_or_else(|| panic!("no summary of {agent}: {status:#}"));
        assert_eq!(summary["outcome"], "ok", "{summary:#}");
        assert_eq!(summary["attempts"], 1, "{summary:#}");
        assert_eq!(summary["input_tokens"], INPUT_TOKENS, "{summary:#}");
        assert_eq!(summary["output_tokens"], OUTPUT_TOKENS, "{summary:#}");
    }
    for phase in ["review", "synthesis", "qa"] {
        let (_, summary) = summaries
            .iter()
            .find(|((of, _), _)| of == phase)
            .unwrap_or_else(|| panic!("no {phase} summary: {status:#}"));
        let input = summary["input_tokens"]
            .as_u64()
            .unwrap_or_else(|| panic!("{phase} has no input tokens: {summary:#}"));
        let output = summary["output_tokens"]
            .as_u64()
            .unwrap_or_else(|| panic!("{phase} has no output tokens: {summary:#}"));
        assert!(
            input > 0
                && input % INPUT_TOKENS == 0
                && output == input / INPUT_TOKENS * OUTPUT_TOKENS,
            "{phase}: {summary:#}"
        );
    }
}

/// The staged plan.md is what the loopback model wrote.
fn assert_plan_from_the_model(repo: &TestRepo, run: &str) {
    let plan = std::fs::read_to_string(repo.run_dir(run).join("plan/staged/plan.md"))
        .expect("the staged plan.md");
    assert!(plan.contains("Loopback findings"), "{plan}");
}

/// The requests the parallel agents, reviewer, synthesizer and QA made: at least one each, and
/// one of them QA's.
fn assert_whole_stage_asked(requests: &[Recorded]) {
    assert!(
        requests.len() >= PLAN_AGENTS.len() + 3,
        "too few requests: {}",
        requests.len()
    );
    assert!(
        requests.iter().any(|request| is_qa(request.prompt())),
        "QA never asked the server"
    );
}

#[test]
fn a_stage_runs_end_to_end_on_the_openai_backend_streamed() {
    let server = LoopbackServer::start(|request, _| openai_stream(&answer_for(request.prompt())));
    let repo = http_repo("openai", &format!("{}/v1", server.origin()));
    let ran = stagegate(&repo, &["run", "plan", "--no-input"], Some(KEY))
        .expect_code(EXIT_AWAITING_DECISION);
    let run = ran.run_id();

    let status = repo.run_status(&run);
    assert_eq!(status["run"]["state"], "awaiting_decision", "{status:#}");
    assert_tokens_recorded(&status);
    assert_plan_from_the_model(&repo, &run);

    let requests = server.requests();
    assert_whole_stage_asked(&requests);
    for request in &requests {
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, "/v1/chat/completions");
        assert_eq!(
            request.header("authorization"),
            Some(format!("Bearer {KEY}").as_str())
        );
        assert_eq!(request.body["model"], "test-model", "{}", request.body);
        assert_eq!(request.body["stream"], true);
        assert_eq!(request.body["stream_options"]["include_usage"], true);
        assert_eq!(request.body["messages"][0]["role"], "user");
        assert!(!request.prompt().is_empty());
    }
}

#[test]
fn a_stage_runs_end_to_end_on_the_anthropic_backend() {
    let server =
        LoopbackServer::start(|request, _| anthropic_stream(&answer_for(request.prompt())));
    let repo = http_repo("anthropic", &server.origin());
    let ran = stagegate(&repo, &["run", "plan", "--no-input"], Some(KEY))
        .expect_code(EXIT_AWAITING_DECISION);
    let run = ran.run_id();

    let status = repo.run_status(&run);
    assert_tokens_recorded(&status);
    assert_plan_from_the_model(&repo, &run);

    let requests = server.requests();
    assert_whole_stage_asked(&requests);
    for request in &requests {
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, "/v1/messages");
        assert_eq!(request.header("x-api-key"), Some(KEY));
        assert_eq!(request.header("anthropic-version"), Some("2023-06-01"));
        assert_eq!(request.header("authorization"), None);
        assert_eq!(request.body["model"], "test-model", "{}", request.body);
        assert_eq!(request.body["stream"], true);
        assert!(
            request.body["max_tokens"]
                .as_u64()
                .is_some_and(|max| max > 0)
        );
        assert!(
            request.body["system"]
                .as_str()
                .is_some_and(|system| system.contains("spec-kit")),
            "{}",
            request.body
        );
    }
}

#[test]
fn a_rate_limited_request_is_retried_after_retry_after_and_the_run_reaches_the_gate() {
    let server = LoopbackServer::start(|request, index| {
        if index == 0 {
            Reply::json(
                429,
                &json!({"error": {"message": "Rate limit reached for test-model", "type": "requests"}}),
            )
            .with_header("retry-after", "1")
        } else {
            openai_json(&answer_for(request.prompt()))
        }
    });
    let repo = http_repo("openai", &format!("{}/v1", server.origin()));
    let ran = stagegate(&repo, &["run", "plan", "--no-input", "--json"], Some(KEY))
        .expect_code(EXIT_AWAITING_DECISION);

    let requests = server.requests();
    let limited = &requests[0];
    let limited_at = limited.replied_at.expect("the 429 was sent");
    let retried = requests[1..]
        .iter()
        .find(|request| request.raw_body == limited.raw_body)
        .unwrap_or_else(|| panic!("the rate-limited request was never sent again"));
    let waited = retried.at.duration_since(limited_at);
    assert!(
        waited >= Duration::from_secs(1),
        "retried {waited:?} after the 429 with Retry-After: 1"
    );

    let events = ran.json_lines();
    let rate_limited: Vec<&Value> = events
        .iter()
        .filter(|event| {
            event["event"] == "attempt_finished" && event["failure"]["kind"] == "rate_limited"
        })
        .collect();
    assert_eq!(rate_limited.len(), 1, "{events:#?}");
    let failure = &rate_limited[0]["failure"];
    assert_eq!(failure["retry_after_ms"], 1000, "{failure:#}");
    assert!(
        failure["message"].as_str().is_some_and(
            |message| message.contains("429") && message.contains("Rate limit reached")
        ),
        "{failure:#}"
    );
    // The same call succeeded on its next attempt.
    let limited_call = &rate_limited[0];
    let succeeded = events.iter().any(|event| {
        event["event"] == "attempt_finished"
            && event["status"] == "ok"
            && event["phase"] == limited_call["phase"]
            && event["agent"] == limited_call["agent"]
            && event["artifact"] == limited_call["artifact"]
            && event["attempt"] == 2
    });
    assert!(succeeded, "{events:#?}");
    assert_plan_from_the_model(&repo, &ran.run_id());
}

/// The `attempt_finished` events of the parallel agents, by agent, in order; and those before
/// the sequential pass (if there was one).
pub(crate) fn agent_attempts(
    events: &[Value],
) -> (BTreeMap<String, Vec<Value>>, BTreeMap<String, Vec<Value>>) {
    let mut all: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let mut parallel: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let mut sequential = false;
    for event in events {
        if event["event"] == "sequential_pass_started" {
            sequential = true;
        }
        if event["event"] == "attempt_finished" && event["phase"] == "agent" {
            let agent = event["agent"].as_str().expect("an agent").to_owned();
            all.entry(agent.clone()).or_default().push(event.clone());
            if !sequential {
                parallel.entry(agent).or_default().push(event.clone());
            }
        }
    }
    (all, parallel)
}

#[test]
fn an_unauthorized_key_is_not_retried_and_fails_the_stage_with_the_servers_message() {
    let server = LoopbackServer::start(|_, _| {
        Reply::json(
            401,
            &json!({"error": {
                "message": "Incorrect API key provided.",
                "type": "invalid_request_error",
                "code": "invalid_api_key",
            }}),
        )
    });
    let repo = http_repo("openai", &format!("{}/v1", server.origin()));
    let ran = stagegate(&repo, &["run", "plan", "--no-input", "--json"], Some(KEY))
        .expect_code(EXIT_STAGE_FAILED)
        .stderr_has("401 Unauthorized: Incorrect API key provided.")
        .stderr_has(&format!("check the key in {KEY_VAR}"));

    let events = ran.json_lines();
    assert!(
        !events
            .iter()
            .any(|event| event["event"] == "retry_scheduled"),
        "a 401 was retried: {events:#?}"
    );
    let (all, parallel) = agent_attempts(&events);
    for agent in PLAN_AGENTS {
        // The retry policy gives up at once: one attempt each in the parallel phase.
        let attempts = parallel
            .get(agent)
            .unwrap_or_else(|| panic!("{agent} never finished an attempt: {events:#?}"));
        assert_eq!(attempts.len(), 1, "{agent}: {attempts:#?}");
        assert_eq!(attempts[0]["attempt"], 1);
        assert_eq!(attempts[0]["status"], "failed", "{:#}", attempts[0]);
        assert_eq!(
            attempts[0]["failure"]["kind"], "permanent",
            "{:#}",
            attempts[0]
        );
        // The sequential pass (the quorum is lost) skips it: alone it would be refused the
        // same way.
        let numbers: Vec<&Value> = all[agent]
            .iter()
            .map(|attempt| &attempt["attempt"])
            .collect();
        assert_eq!(numbers, [1], "{agent}: {:#?}", all[agent]);
    }
    // One request per attempt, and nothing past the agents.
    let attempts: usize = all.values().map(Vec::len).sum();
    let requests = server.requests();
    assert_eq!(requests.len(), attempts, "{requests:#?}");
    assert!(
        !events
            .iter()
            .any(|event| event["event"] == "attempt_started" && event["phase"] != "agent"),
        "the stage went on past its agents: {events:#?}"
    );
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries = std::fs::read_dir(&dir)
            .unwrap_or_else(|error| panic!("read {}: {error}", dir.display()));
        for entry in entries {
            let entry = entry.expect("a directory entry");
            let kind = entry.file_type().expect("a file type");
            if kind.is_dir() {
                pending.push(entry.path());
            } else if kind.is_file() {
                files.push(entry.path());
            }
        }
    }
    files
}

/// No file of the repository (`.stagegate/`, its state database and write-ahead log, the run
/// directories, the feature) holds the key's bytes.
fn assert_no_key_in_files(repo: &TestRepo) {
    let files = files_under(&repo.root);
    assert!(
        files
            .iter()
            .any(|file| file.ends_with(".stagegate/state.db")
                || file.to_string_lossy().contains(".stagegate/state")),
        "no state database among {files:#?}"
    );
    for file in files {
        let bytes =
            std::fs::read(&file).unwrap_or_else(|error| panic!("read {}: {error}", file.display()));
        assert!(
            !bytes
                .windows(KEY.len())
                .any(|window| window == KEY.as_bytes()),
            "the key is in {}",
            file.display()
        );
    }
}

fn assert_no_key_in_output(ran: &Outcome) {
    assert!(!ran.stdout.contains(KEY), "the key is on stdout: {ran:?}");
    assert!(!ran.stderr.contains(KEY), "the key is on stderr: {ran:?}");
}

/// A server that echoes the key in its first answer (a 500 with it in the message, as a
/// misbehaving proxy might), then answers normally.
fn echoing_server() -> LoopbackServer {
    LoopbackServer::start(|request, index| {
        if index == 0 {
            let sent = request.header("authorization").unwrap_or_default();
            Reply::json(
                500,
                &json!({"error": {"message": format!("upstream refused the credentials {sent}")}}),
            )
        } else {
            openai_stream(&answer_for(request.prompt()))
        }
    })
}

#[test]
fn the_key_never_reaches_output_logs_or_files() {
    for global in [&["--json"][..], &["--log-format", "json"][..]] {
        let server = echoing_server();
        let repo = http_repo("openai", &format!("{}/v1", server.origin()));
        let mut args = vec!["run", "plan", "--no-input"];
        args.extend_from_slice(global);
        let ran = stagegate(&repo, &args, Some(KEY)).expect_code(EXIT_AWAITING_DECISION);
        assert_no_key_in_output(&ran);
        let run = ran.run_id();

        // The server got the key, and echoed it back once.
        let requests = server.requests();
        assert!(
            requests
                .iter()
                .all(|request| request.header("authorization") == Some(&format!("Bearer {KEY}"))),
            "{requests:#?}"
        );
        // What stagegate reported of the echo is redacted.
        let echo = "upstream refused the credentials Bearer [REDACTED]";
        assert!(
            ran.stdout.contains(echo) || ran.stderr.contains(echo),
            "the echoing failure is not reported: {ran:?}"
        );
        for args in [
            &["status"][..],
            &["status", "--json"][..],
            &["status", &run][..],
            &["status", &run, "--json"][..],
            &["metrics", "--format", "json"][..],
        ] {
            let ran = stagegate(&repo, args, Some(KEY));
            assert_no_key_in_output(&ran);
        }
        assert_no_key_in_files(&repo);
    }
}

#[test]
fn a_missing_key_variable_fails_each_attempt_naming_the_variable() {
    let server = LoopbackServer::start(|request, _| openai_stream(&answer_for(request.prompt())));
    let repo = http_repo("openai", &format!("{}/v1", server.origin()));
    let ran = stagegate(&repo, &["run", "plan", "--no-input", "--json"], None)
        .expect_code(EXIT_STAGE_FAILED)
        .stderr_has(KEY_VAR)
        .stderr_has("is not set");
    assert!(!ran.stderr.contains("panicked"), "{ran:?}");

    let events = ran.json_lines();
    let (all, _) = agent_attempts(&events);
    for agent in PLAN_AGENTS {
        let attempts = all
            .get(agent)
            .unwrap_or_else(|| panic!("{agent} never finished an attempt: {events:#?}"));
        for attempt in attempts {
            assert_eq!(attempt["status"], "failed", "{attempt:#}");
            let message = attempt["failure"]["message"].as_str().unwrap_or_default();
            assert!(
                message.contains(KEY_VAR) && message.contains("backends.local.api_key_env"),
                "{attempt:#}"
            );
        }
    }
    assert!(
        server.requests().is_empty(),
        "a request went out without a key"
    );
}

#[test]
fn an_unreachable_server_fails_retryably_naming_the_url() {
    let port = closed_port();
    let base_url = format!("http://127.0.0.1:{port}/v1");
    let repo = http_repo("openai", &base_url);
    let ran = stagegate(&repo, &["run", "plan", "--no-input", "--json"], Some(KEY))
        .expect_code(EXIT_STAGE_FAILED)
        .stderr_has(&format!("{base_url}/chat/completions"));

    let events = ran.json_lines();
    let (_, parallel) = agent_attempts(&events);
    for agent in PLAN_AGENTS {
        let attempts = parallel
            .get(agent)
            .unwrap_or_else(|| panic!("{agent} never finished an attempt: {events:#?}"));
        // retries = 1: two attempts, both retryable failures naming the URL.
        let numbers: Vec<&Value> = attempts.iter().map(|attempt| &attempt["attempt"]).collect();
        assert_eq!(numbers, [1, 2], "{agent}: {attempts:#?}");
        for attempt in attempts {
            assert_eq!(attempt["failure"]["kind"], "retryable", "{attempt:#}");
            let message = attempt["failure"]["message"].as_str().unwrap_or_default();
            assert!(
                message.contains(&format!("could not reach {base_url}/chat/completions")),
                "{attempt:#}"
            );
        }
        let retries = events
            .iter()
            .filter(|event| event["event"] == "retry_scheduled" && event["agent"] == agent)
            .count();
        assert_eq!(retries, 1, "{agent}: {events:#?}");
    }
    let status = repo.run_status(&ran.run_id());
    assert_eq!(status["run"]["state"], "failed", "{status:#}");
}
