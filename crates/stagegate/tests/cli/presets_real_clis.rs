//! Each CLI preset against the real CLI from npm, the way a new user meets it: a fresh
//! repository (an untrusted folder), no session, a model API that refuses the key. No model is
//! reachable here, so the tests assert what is observable: the CLI starts under its preset's
//! memory cap (run by the supervisor), the error it prints for the refused request is captured
//! and classified, nothing is "killed by" a signal, and a permanent failure is not retried.
//!
//! The CLIs are installed by `.ci/run` under `target/npm-clis` (or `STAGEGATE_NPM_CLIS` names
//! their `node_modules/.bin`). Without them these tests fail and say how to install them;
//! `STAGEGATE_SKIP_REAL_CLI_TESTS=1` skips them on purpose (a machine without Node).
//! Cursor's `agent` is not on npm and has no test: its preset is marked unverified.
//!
//! Beside them, stand-ins replay the tools' success output (the shapes their bundled sources
//! write) to check that the usage and the cost a tool reports reach `status`.

use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use serde_json::json;

use assert_cmd::Command;

use crate::harness::{EXIT_AWAITING_DECISION, EXIT_STAGE_FAILED, TestRepo, toml_string};
use crate::loopback_server::{LoopbackServer, Reply};

/// One CLI at a time: each runs four copies of a Node or Bun program on a shared machine.
static ONE_CLI_AT_A_TIME: Mutex<()> = Mutex::new(());

/// How long one `stagegate run plan` may take: one CLI start, on a machine other builds share.
const COMMAND_LIMIT: Duration = Duration::from_secs(300);

/// Where the npm CLIs' executables are.
fn npm_bin() -> PathBuf {
    if let Some(dir) = std::env::var_os("STAGEGATE_NPM_CLIS") {
        return PathBuf::from(dir);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/npm-clis/node_modules/.bin")
}

/// How one preset is tried: the environment that points the CLI at the refusing server, and
/// what its own error says.
struct Trial {
    preset: &'static str,
    environment: Vec<(String, String)>,
    says: &'static str,
    permanent: bool,
    /// Whether the CLI sends its request to the loopback server (some check their credentials,
    /// or lack a network, before they ask anyone).
    asks_server: bool,
}

/// Runs `stagegate run plan` on the preset in a fresh repository with the CLI on the PATH.
fn smoke(trial: impl FnOnce(&str) -> Trial) {
    if std::env::var_os("STAGEGATE_SKIP_REAL_CLI_TESTS").is_some() {
        eprintln!("skipped: STAGEGATE_SKIP_REAL_CLI_TESTS is set");
        return;
    }
    let server = LoopbackServer::start(|_, _| {
        Reply::json(
            401,
            &json!({"type": "error", "error": {"type": "authentication_error",
                    "message": "invalid x-api-key", "code": "invalid_api_key"}}),
        )
    });
    let trial = trial(&server.origin());
    let bin = npm_bin();
    let program = bin.join(trial.preset);
    assert!(
        program.exists(),
        "{} is not installed: run `.ci/run` (its install_npm_clis step), or `npm install \
         --prefix target/npm-clis` with the packages .ci/run names; or set \
         STAGEGATE_SKIP_REAL_CLI_TESTS=1 to skip these tests on purpose",
        program.display()
    );
    let _one = ONE_CLI_AT_A_TIME
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let home = tempfile::tempdir().expect("a home directory");
    // One agent: each attempt is a whole CLI start (seconds to half a minute on a busy
    // machine), and one says what four would. Generous timeouts: a timeout is not what is tested.
    let mut repo = TestRepo::with_approved_spec()
        .set("defaults", "backend", &format!("\"{}\"", trial.preset))
        .set("defaults", "retries", "0")
        .set("stages.plan", "agents", "[\"requirements-analyst\"]");
    for class in [
        "default",
        "complex_analysis",
        "simple_check",
        "review",
        "synthesis",
        "qa",
    ] {
        repo = repo.set("timeouts", class, "\"240s\"");
    }
    repo = repo.set("timeouts", "stage", "\"280s\"");
    let path = format!("{}:/usr/local/bin:/usr/bin:/bin", bin.display());
    let mut environment = vec![
        ("PATH".to_owned(), path),
        ("HOME".to_owned(), home.path().display().to_string()),
    ];
    environment.extend(trial.environment);
    let outcome = run_plan(&repo, &environment);
    assert_eq!(outcome.code, Some(EXIT_STAGE_FAILED), "{outcome:?}");
    assert!(
        outcome.stderr.contains(trial.says),
        "no {:?} in {outcome:?}",
        trial.says
    );
    assert!(!outcome.stderr.contains("killed by"), "{outcome:?}");
    assert!(
        !outcome.stderr.contains("memory cap"),
        "started under its preset's cap: {outcome:?}"
    );
    let retried = outcome.stderr.contains("attempt 2");
    assert_eq!(
        retried, !trial.permanent,
        "only a retryable failure gets the sequential pass's second attempt: {outcome:?}"
    );
    assert_eq!(
        !server.requests().is_empty(),
        trial.asks_server,
        "whether the CLI asked the loopback server: {outcome:?}"
    );
}

/// How `stagegate run plan` ended.
#[derive(Debug)]
struct Ended {
    code: Option<i32>,
    stderr: String,
}

/// `stagegate run plan --no-input` in `repo` with `environment` added, none of the caller's
/// `STAGEGATE_*` or spec-kit variables, and [`COMMAND_LIMIT`] to end.
fn run_plan(repo: &TestRepo, environment: &[(String, String)]) -> Ended {
    let mut command = Command::cargo_bin("stagegate").expect("the stagegate binary");
    command
        .current_dir(&repo.root)
        .args(["run", "plan", "--no-input"])
        .env("NO_COLOR", "1")
        .env_remove("SPECIFY_FEATURE_DIRECTORY")
        .timeout(COMMAND_LIMIT);
    for (name, _) in std::env::vars_os() {
        let text = name.to_string_lossy();
        if text.starts_with("STAGEGATE_") || text.starts_with("SPECKIT_INTEGRATION_") {
            command.env_remove(&name);
        }
    }
    command.envs(environment.iter().map(|(name, value)| (name, value)));
    let output = command.output().expect("run stagegate");
    Ended {
        code: output.status.code(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn pairs(list: &[(&str, String)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(name, value)| ((*name).to_owned(), value.clone()))
        .collect()
}

#[test]
fn claude_reports_the_refused_key_and_is_not_retried() {
    smoke(|origin| Trial {
        preset: "claude",
        environment: pairs(&[
            ("ANTHROPIC_API_KEY", "sk-ant-stagegate-test".to_owned()),
            ("ANTHROPIC_BASE_URL", origin.to_owned()),
        ]),
        says: "Invalid API key",
        permanent: true,
        asks_server: true,
    });
}

#[test]
fn codex_reports_the_refused_key_through_its_event_stream() {
    smoke(|origin| Trial {
        preset: "codex",
        environment: pairs(&[
            ("OPENAI_API_KEY", "sk-stagegate-test".to_owned()),
            // spec-kit's extra arguments, placed before `--json`: a provider on loopback.
            (
                "SPECKIT_INTEGRATION_CODEX_EXTRA_ARGS",
                format!(
                    "-c 'model_providers.loopback={{name=\"loopback\",base_url=\"{origin}/v1\",\
                     env_key=\"OPENAI_API_KEY\",wire_api=\"responses\"}}' -c model_provider=loopback"
                ),
            ),
        ]),
        says: "unexpected status 401",
        permanent: true,
        asks_server: true,
    });
}

#[test]
fn codex_without_a_network_ends_on_its_own_words_not_at_the_timeout() {
    // No base URL: codex tries its real endpoint, which this machine cannot reach. It then
    // prints "Reconnecting... waiting for network" and would wait forever; the attempt ends
    // there, retryable, instead of at the agent timeout.
    smoke(|_| Trial {
        preset: "codex",
        environment: pairs(&[("OPENAI_API_KEY", "sk-stagegate-test".to_owned())]),
        says: "waiting for network",
        permanent: false,
        asks_server: false,
    });
}

#[test]
fn gemini_runs_in_an_untrusted_folder_and_reports_its_auth_error() {
    // Gemini CLI checks its auth setup before it asks the server (without a base URL it would
    // retry the real endpoint for minutes).
    smoke(|origin| Trial {
        preset: "gemini",
        environment: pairs(&[
            ("GEMINI_API_KEY", "stagegate-test".to_owned()),
            ("GOOGLE_GEMINI_BASE_URL", origin.to_owned()),
        ]),
        says: "Invalid auth method selected.",
        permanent: true,
        asks_server: false,
    });
}

#[test]
fn qwen_reports_the_refused_key_it_prints_as_an_answer() {
    smoke(|origin| Trial {
        preset: "qwen",
        environment: pairs(&[
            ("OPENAI_API_KEY", "sk-stagegate-test".to_owned()),
            ("OPENAI_BASE_URL", format!("{origin}/v1")),
            (
                "SPECKIT_INTEGRATION_QWEN_EXTRA_ARGS",
                "--auth-type openai".to_owned(),
            ),
        ]),
        says: "[API Error: 401",
        permanent: true,
        asks_server: true,
    });
}

#[test]
fn opencode_reports_the_refused_key_through_its_event_stream() {
    smoke(|origin| Trial {
        preset: "opencode",
        environment: pairs(&[(
            "OPENCODE_CONFIG_CONTENT",
            json!({
                "provider": {"loopback": {
                    "npm": "@ai-sdk/openai-compatible",
                    "name": "loopback",
                    "options": {"baseURL": format!("{origin}/v1"), "apiKey": "stagegate-test"},
                    "models": {"m": {"name": "m"}}
                }},
                "model": "loopback/m"
            })
            .to_string(),
        )]),
        // Its `error` event (`--format json`, on stdout), read and classified as the key.
        says: "the agent reported an error: invalid x-api-key; log the agent in",
        permanent: true,
        asks_server: true,
    });
}

#[test]
fn copilot_reports_that_it_cannot_check_its_token() {
    smoke(|_| Trial {
        preset: "copilot",
        environment: pairs(&[("COPILOT_GITHUB_TOKEN", "gho_stagegatetest".to_owned())]),
        // Its first line says the token "could not be validated" (the network is down); the
        // quoted last lines say how to log in.
        says: "run the '/login' command",
        permanent: false,
        asks_server: false,
    });
}

/// A repository whose every agent is a stand-in that reads the prompt and prints `stdout` (a
/// tool's real output shape), read as `format`; its backend has a price that the reported cost
/// must win over.
fn stand_in_repo(format: &str, stdout: &str) -> TestRepo {
    let repo = TestRepo::with_approved_spec();
    let output = repo.fake_dir.join("stand-in-output");
    std::fs::write(&output, stdout).expect("write the stand-in's output");
    let command = format!(
        "[\"sh\", \"-c\", \"cat > /dev/null; cat \\\"$0\\\"\", {}]",
        toml_string(&output.display().to_string())
    );
    repo.set("backends.standin", "kind", "\"command\"")
        .set("backends.standin", "command", &command)
        .set("backends.standin", "output_format", &toml_string(format))
        .set("defaults", "backend", "\"standin\"")
        .set("prices.standin", "input_per_mtok", "1000.0")
        .set("prices.standin", "output_per_mtok", "1000.0")
}

/// Runs the plan stage on the stand-in and checks that every parallel agent's summary in
/// `status --json` has these tokens and the cost the tool reported.
fn assert_reported_usage(repo: &TestRepo, tokens: (u64, u64), cost: f64) {
    let run = repo
        .run(&["run", "plan", "--no-input"])
        .expect_code(EXIT_AWAITING_DECISION)
        .run_id();
    let status = repo.run_status(&run);
    let agents = status["agents"].as_array().expect("agents");
    let parallel: Vec<&serde_json::Value> = agents
        .iter()
        .filter(|summary| summary["phase"] == "agent")
        .collect();
    assert!(!parallel.is_empty(), "{status:#}");
    for summary in parallel {
        assert_eq!(summary["input_tokens"], tokens.0, "{summary:#}");
        assert_eq!(summary["output_tokens"], tokens.1, "{summary:#}");
        let shown = summary["cost"].as_f64().expect("a cost");
        assert!((shown - cost).abs() < 1e-9, "{summary:#}");
    }
}

#[test]
fn claudes_reported_cost_is_the_cost_status_shows() {
    let envelope = json!({
        "type": "result", "subtype": "success", "is_error": false, "num_turns": 1,
        "result": "## Findings\n\nEvery requirement is covered.\nVERDICT: PASS",
        "total_cost_usd": 0.0123,
        "usage": {"input_tokens": 7, "cache_read_input_tokens": 3, "output_tokens": 9},
    });
    let repo = stand_in_repo("claude-json", &envelope.to_string());
    assert_reported_usage(&repo, (10, 9), 0.0123);
}

#[test]
fn opencodes_step_costs_are_the_cost_status_shows() {
    let event = |kind: &str, part: serde_json::Value| {
        json!({"type": kind, "timestamp": 1, "sessionID": "ses_1", "part": part}).to_string()
    };
    let stdout = [
        event("step_start", json!({"type": "step-start"})),
        event(
            "text",
            json!({"type": "text", "text": "## Findings\n\nAll covered.\nVERDICT: PASS"}),
        ),
        event(
            "step_finish",
            json!({"type": "step-finish", "reason": "stop", "cost": 0.0042,
                   "tokens": {"input": 5, "output": 8, "reasoning": 2,
                              "cache": {"read": 20, "write": 0}}}),
        ),
    ]
    .join("\n");
    let repo = stand_in_repo("opencode-jsonl", &stdout);
    assert_reported_usage(&repo, (25, 10), 0.0042);
}
