//! Stage A against a real model: llama.cpp's `llama-server` on loopback, serving a tiny model
//! (`tests/fixtures/tiny-model`: random weights, so gibberish, but run by the real server over
//! its real OpenAI and Anthropic protocols, with its own streaming, usage, stop reasons, key
//! check and errors). The hand-written loopback server (`http_backends`, `http_honest_answers`)
//! covers the cases a real model cannot be made to produce on demand (429s, reasoning, …).
//!
//! The server is started with `--grammar-file answer.gbnf`, which gives the model's random
//! answers a shape that ends by itself, so an answer stops ("stop", "end_turn") unless
//! `max_tokens` cuts it first; and with `--api-key`, so the key stagegate sends is checked.
//!
//! `.ci/run` (its `install_llama_server` step) builds the server and writes the model under
//! `target/llama/`; `STAGEGATE_LLAMA_SERVER` and `STAGEGATE_TINY_MODEL` point elsewhere. Without
//! them these tests fail and say how to get them; `STAGEGATE_SKIP_REAL_MODEL_TESTS=1` skips them
//! on purpose.

use std::fs::File;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde_json::Value;
use tempfile::TempDir;

use crate::harness::{
    EXIT_AWAITING_DECISION, EXIT_DONE, EXIT_STAGE_FAILED, PLAN_AGENTS, TestRepo, poll,
};
use crate::http_backends::{KEY, agent_attempts, http_repo, stagegate};

/// One server at a time: each takes both of a small machine's cores while it answers.
static ONE_SERVER_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Set to skip these tests on purpose (a machine that cannot build llama.cpp).
const SKIP_VARIABLE: &str = "STAGEGATE_SKIP_REAL_MODEL_TESTS";

/// How long the server may take to load the model and answer `/health`.
const START_LIMIT: Duration = Duration::from_secs(60);

/// The parallel slots: the plan stage's concurrency, and one to spare.
const SLOTS: u32 = 4;

/// The context of each slot, in tokens: the tests' longest prompts (the synthesizer's, which
/// hold every agent's answer) take a few thousand.
const CONTEXT_PER_SLOT: u32 = 16_384;

fn llama_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/llama")
}

fn path_from(variable: &str, default: PathBuf) -> PathBuf {
    std::env::var_os(variable).map_or(default, PathBuf::from)
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tiny-model")
        .join(name)
}

/// A running `llama-server` with the tiny model on a loopback port it chose; stopped on drop.
struct LlamaServer {
    child: Child,
    origin: String,
    log: PathBuf,
    _dir: TempDir,
    _one: MutexGuard<'static, ()>,
}

impl LlamaServer {
    /// Starts the server and waits until it serves; `None` when the tests are skipped.
    fn start() -> Option<LlamaServer> {
        if std::env::var_os(SKIP_VARIABLE).is_some() {
            eprintln!("skipped: {SKIP_VARIABLE} is set");
            return None;
        }
        let binary = path_from(
            "STAGEGATE_LLAMA_SERVER",
            llama_dir().join("bin/llama-server"),
        );
        let model = path_from("STAGEGATE_TINY_MODEL", llama_dir().join("tiny.gguf"));
        for (what, path, variable) in [
            ("llama-server", &binary, "STAGEGATE_LLAMA_SERVER"),
            ("the tiny model", &model, "STAGEGATE_TINY_MODEL"),
        ] {
            assert!(
                path.exists(),
                "{what} is not at {}: run `.ci/run` (its install_llama_server step builds \
                 llama-server and writes the model under target/llama/), or set {variable} to \
                 where it is; or set {SKIP_VARIABLE}=1 to skip these tests on purpose",
                path.display()
            );
        }
        let one = ONE_SERVER_AT_A_TIME
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let dir = tempfile::tempdir().expect("a directory for the server's log");
        let log = dir.path().join("llama-server.log");
        let output = File::create(&log).expect("create the server's log");
        let child = Command::new(&binary)
            .arg("--model")
            .arg(&model)
            .arg("--grammar-file")
            .arg(fixture("answer.gbnf"))
            .args(["--host", "127.0.0.1", "--port", "0", "--api-key", KEY])
            .args(["--parallel", &SLOTS.to_string()])
            .args(["--ctx-size", &(SLOTS * CONTEXT_PER_SLOT).to_string()])
            .args(["--threads", "2", "--seed", "7", "--log-colors", "off"])
            .stdin(Stdio::null())
            .stdout(output.try_clone().expect("share the log"))
            .stderr(output)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {}: {error}", binary.display()));
        let mut server = LlamaServer {
            child,
            origin: String::new(),
            log,
            _dir: dir,
            _one: one,
        };
        server.origin = server.wait_for_origin();
        server.wait_until_healthy();
        Some(server)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The `http://127.0.0.1:PORT` the server says it listens on.
    fn wait_for_origin(&mut self) -> String {
        let found = poll(START_LIMIT, || {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("llama-server exited ({status}):\n{}", self.log_text());
            }
            let log = self.log_text();
            let (_, rest) = log.split_once("listening on ")?;
            let origin = rest.split_whitespace().next()?;
            origin
                .starts_with("http://127.0.0.1:")
                .then(|| origin.to_owned())
        });
        found.unwrap_or_else(|| {
            panic!(
                "llama-server did not listen within {START_LIMIT:?}:\n{}",
                self.log_text()
            )
        })
    }

    /// Waits until `/health` says the model is loaded (503 while it loads).
    fn wait_until_healthy(&mut self) {
        let address = self.origin.trim_start_matches("http://").to_owned();
        let healthy = poll(START_LIMIT, || {
            let mut stream = TcpStream::connect(&address).ok()?;
            stream
                .write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                .ok()?;
            let mut reply = String::new();
            stream.read_to_string(&mut reply).ok()?;
            reply.starts_with("HTTP/1.1 200").then_some(())
        });
        if healthy.is_none() {
            panic!(
                "llama-server was not healthy within {START_LIMIT:?}:\n{}",
                self.log_text()
            );
        }
    }

    /// How many requests the server finished, from its log.
    fn answered(&self) -> usize {
        self.log_text().matches("stop processing").count()
    }
}

impl Drop for LlamaServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A repository whose every agent is the `local` backend of `kind` on the server, with timeouts
/// that leave room for a shared machine (a timeout is not what these tests test).
fn real_model_repo(kind: &str, server: &LlamaServer) -> TestRepo {
    let base_url = match kind {
        "openai" => format!("{}/v1", server.origin),
        _ => server.origin.clone(),
    };
    let mut repo = http_repo(kind, &base_url);
    for class in ["default", "review", "synthesis", "qa"] {
        repo = repo.set("timeouts", class, "\"60s\"");
    }
    repo.set("timeouts", "stage", "\"300s\"")
}

/// Every parallel agent answered, and its token counts are the server's own.
fn assert_agents_answered_with_usage(status: &Value) {
    let agents = status["agents"]
        .as_array()
        .unwrap_or_else(|| panic!("status RUN --json has agents: {status:#}"));
    for agent in PLAN_AGENTS {
        let summary = agents
            .iter()
            .find(|summary| summary["phase"] == "agent" && summary["agent"] == agent)
            .unwrap_or_else(|| panic!("no summary of {agent}: {status:#}"));
        assert_eq!(summary["outcome"], "ok", "{summary:#}");
        for tokens in ["input_tokens", "output_tokens"] {
            assert!(
                summary[tokens].as_u64().is_some_and(|count| count > 0),
                "{agent} has no {tokens}: {summary:#}"
            );
        }
    }
}

/// `run plan --no-input` on `kind` reaches the gate with the model's answers.
fn stage_a_reaches_the_gate(kind: &str) {
    let Some(server) = LlamaServer::start() else {
        return;
    };
    let repo = real_model_repo(kind, &server);
    let run = stagegate(&repo, &["run", "plan", "--no-input"], Some(KEY))
        .expect_code(EXIT_AWAITING_DECISION)
        .run_id();

    let status = repo.run_status(&run);
    assert_eq!(status["run"]["state"], "awaiting_decision", "{status:#}");
    assert_agents_answered_with_usage(&status);
    let plan = std::fs::read_to_string(repo.run_dir(&run).join("plan/staged/plan.md"))
        .expect("the staged plan.md");
    assert!(!plan.trim().is_empty(), "the model wrote an empty plan.md");
    assert!(
        server.answered() >= PLAN_AGENTS.len() + 3,
        "the agents, the review, the synthesis and QA were not all answered by the server:\n{}",
        server.log_text()
    );
}

#[test]
fn stage_a_reaches_the_gate_over_the_openai_protocol() {
    stage_a_reaches_the_gate("openai");
}

#[test]
fn stage_a_reaches_the_gate_over_the_anthropic_protocol() {
    stage_a_reaches_the_gate("anthropic");
}

#[test]
fn an_answer_cut_at_max_tokens_shows_as_truncated_in_status() {
    let Some(server) = LlamaServer::start() else {
        return;
    };
    // Two tokens: shorter than any answer the grammar allows, so every answer is cut.
    let repo = real_model_repo("openai", &server)
        .set("backends.local", "max_tokens", "2")
        .set("backends.local", "on_truncation", "\"accept\"");
    let run = stagegate(&repo, &["run", "plan", "--no-input"], Some(KEY))
        .expect_code(EXIT_AWAITING_DECISION)
        .stderr_has("answer cut at the output-token limit (1×), kept incomplete")
        .run_id();

    let status = repo.run_status(&run);
    let cut: Vec<&Value> = status["scores_and_adjustments"]
        .as_array()
        .unwrap_or_else(|| panic!("status has scores_and_adjustments: {status:#}"))
        .iter()
        .filter(|event| event["event"] == "answer_truncated" && event["phase"] == "agent")
        .collect();
    assert_eq!(cut.len(), PLAN_AGENTS.len(), "{status:#}");
    assert!(
        cut.iter().all(|event| event["handling"] == "accepted"),
        "{cut:#?}"
    );
    let text = repo.run(&["status", &run]).expect_code(EXIT_DONE);
    // Whichever attempt answered: on a loaded machine a call to the server may fail first and
    // be retried (seen once in CI), and the retry's answer is the one cut.
    for agent in PLAN_AGENTS {
        let head = format!("answer of {agent} truncated at the output-token limit (1×, attempt ");
        assert!(
            text.stdout.lines().any(|line| {
                line.trim()
                    .strip_prefix(&head)
                    .and_then(|rest| rest.strip_suffix("): kept incomplete"))
                    .is_some_and(|attempt| attempt.parse::<u32>().is_ok())
            }),
            "{text:?}"
        );
    }
}

#[test]
fn a_wrong_key_gets_the_servers_own_refusal_and_is_not_retried() {
    let Some(server) = LlamaServer::start() else {
        return;
    };
    let repo = real_model_repo("anthropic", &server);
    let ran = stagegate(
        &repo,
        &["run", "plan", "--no-input", "--json"],
        Some("sk-not-the-servers-key"),
    )
    .expect_code(EXIT_STAGE_FAILED)
    .stderr_has("401 Unauthorized: Invalid API Key (check the key in");

    let (all, _) = agent_attempts(&ran.json_lines());
    for agent in PLAN_AGENTS {
        let attempts = all
            .get(agent)
            .unwrap_or_else(|| panic!("{agent} never finished an attempt: {ran:?}"));
        assert_eq!(attempts.len(), 1, "{agent} was retried: {attempts:#?}");
        assert_eq!(
            attempts[0]["failure"]["kind"], "permanent",
            "{:#}",
            attempts[0]
        );
    }
    assert_eq!(server.answered(), 0, "{}", server.log_text());
}
