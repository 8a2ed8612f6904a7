//! OpenTelemetry trace export (`--features otel`): the real binary runs the plan stage on the
//! built-in analysts with `OTEL_EXPORTER_OTLP_ENDPOINT` pointing at a loopback collector, which
//! must receive the run's `run`, `stage` and `attempt` spans as OTLP/HTTP JSON.
#![cfg(feature = "otel")]

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

/// `--no-input` stops at the gate with this code.
const EXIT_AWAITING_DECISION: i32 = 10;

const SPEC: &str = "# Feature Specification: Demo Albums

## User Scenarios & Testing *(mandatory)*

### User Story 1 - Share an album (Priority: P1)

A team member creates an album and shares it with the team.

**Acceptance Scenarios**:

1. **Given** a signed-in member, **When** they create an album, **Then** the team can see it.

## Requirements *(mandatory)*

### Functional Requirements

- **FR-001**: System MUST let a member create an album.
- **FR-002**: System MUST let a member share an album with their team.

## Success Criteria *(mandatory)*

- **SC-001**: A member shares an album in under a minute.
";

/// One request the collector received.
#[derive(Debug, Clone)]
struct Received {
    method: String,
    path: String,
    body: Vec<u8>,
}

/// A loopback OTLP/HTTP collector: answers every request with `status` and keeps it.
struct Collector {
    port: u16,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Collector {
    fn start(status: &'static str) -> Collector {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = listener.local_addr().expect("the bound address").port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let sink = received.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { break };
                let sink = sink.clone();
                std::thread::spawn(move || serve_connection(stream, status, &sink));
            }
        });
        Collector { port, received }
    }

    fn requests(&self) -> Vec<Received> {
        self.received.lock().expect("not poisoned").clone()
    }
}

/// Serves the requests of one (keep-alive) connection until the client closes it.
fn serve_connection(stream: TcpStream, status: &str, sink: &Mutex<Vec<Received>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = request_line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_owned();
        let path = parts.next().unwrap_or_default().to_owned();
        let mut content_length = 0;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                content_length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; content_length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        sink.lock()
            .expect("not poisoned")
            .push(Received { method, path, body });
        let response = format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{{}}"
        );
        if writer.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

/// A git repository with `specs/001-x/spec.md` and every agent on the built-in analysts.
fn repository() -> tempfile::TempDir {
    let temp = tempfile::Builder::new()
        .prefix("stagegate-otel-")
        .tempdir()
        .expect("a temporary directory");
    let git = Command::new("git")
        .args(["init", "-q"])
        .current_dir(temp.path())
        .status()
        .expect("git is installed");
    assert!(git.success(), "git init failed");
    std::fs::create_dir_all(temp.path().join("specs/001-x")).expect("create the feature");
    std::fs::write(temp.path().join("specs/001-x/spec.md"), SPEC).expect("write spec.md");
    std::fs::write(
        temp.path().join("stagegate.toml"),
        "[defaults]\nbackend = \"builtin\"\n",
    )
    .expect("write stagegate.toml");
    temp
}

/// Runs `stagegate ARGS...` in `root` with `OTEL_EXPORTER_OTLP_ENDPOINT=endpoint` (and none of
/// the caller's `OTEL_*` or `STAGEGATE_*` variables).
fn stagegate(root: &Path, args: &[&str], endpoint: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_stagegate"));
    command
        .current_dir(root)
        .args(args)
        .env_remove("SPECIFY_FEATURE_DIRECTORY")
        .env("NO_COLOR", "1");
    for (name, _) in std::env::vars_os() {
        let name_text = name.to_string_lossy();
        if name_text.starts_with("STAGEGATE_") || name_text.starts_with("OTEL_") {
            command.env_remove(&name);
        }
    }
    if let Some(endpoint) = endpoint {
        command.env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint);
    }
    command.output().expect("run stagegate")
}

fn describe(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Every span in the OTLP/JSON bodies (`resourceSpans[].scopeSpans[].spans[]`).
fn spans(bodies: &[Value]) -> Vec<Value> {
    let list = |value: &Value, key: &str| value[key].as_array().cloned().unwrap_or_default();
    bodies
        .iter()
        .flat_map(|body| list(body, "resourceSpans"))
        .flat_map(|resource| list(&resource, "scopeSpans"))
        .flat_map(|scope| list(&scope, "spans"))
        .collect()
}

fn attribute<'a>(span: &'a Value, key: &str) -> Option<&'a Value> {
    span["attributes"]
        .as_array()?
        .iter()
        .find(|pair| pair["key"] == key)
        .map(|pair| &pair["value"])
}

#[test]
fn a_run_exports_nested_run_stage_and_attempt_spans() {
    let collector = Collector::start("200 OK");
    let endpoint = format!("http://127.0.0.1:{}", collector.port);
    let repo = repository();

    let approve = stagegate(repo.path(), &["approve", "spec"], Some(&endpoint));
    assert_eq!(approve.status.code(), Some(0), "{}", describe(&approve));
    let run = stagegate(repo.path(), &["run", "plan", "--no-input"], Some(&endpoint));
    assert_eq!(
        run.status.code(),
        Some(EXIT_AWAITING_DECISION),
        "{}",
        describe(&run)
    );
    assert!(
        !String::from_utf8_lossy(&run.stderr).contains("OpenTelemetry"),
        "no export warning: {}",
        describe(&run)
    );

    // The flush at the end of the command happens before the process exits.
    let requests = collector.requests();
    let traces: Vec<&Received> = requests
        .iter()
        .filter(|request| request.method == "POST" && request.path == "/v1/traces")
        .collect();
    assert!(!traces.is_empty(), "no POST /v1/traces: {requests:?}");
    let bodies: Vec<Value> = traces
        .iter()
        .map(|request| {
            serde_json::from_slice(&request.body).unwrap_or_else(|error| {
                panic!(
                    "an OTLP/JSON body ({error}): {}",
                    String::from_utf8_lossy(&request.body)
                )
            })
        })
        .collect();
    let text = bodies
        .iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(text.contains(r#""stagegate""#), "service name: {text}");

    let spans = spans(&bodies);
    let named =
        |name: &str| -> Vec<&Value> { spans.iter().filter(|span| span["name"] == name).collect() };
    let (runs, stages, attempts) = (named("run"), named("stage"), named("attempt"));
    assert_eq!(runs.len(), 1, "one run span: {text}");
    assert_eq!(stages.len(), 1, "one stage span: {text}");
    let run_span = runs[0];
    let stage_span = stages[0];
    assert_eq!(stage_span["parentSpanId"], run_span["spanId"], "{text}");
    assert_eq!(
        attribute(stage_span, "stagegate.stage"),
        Some(&serde_json::json!({"stringValue": "plan"})),
        "{text}"
    );
    assert!(
        attempts
            .iter()
            .all(|attempt| attempt["parentSpanId"] == stage_span["spanId"]),
        "attempts are children of the stage: {text}"
    );
    let analyst = attempts
        .iter()
        .find(|attempt| {
            attribute(attempt, "stagegate.agent")
                == Some(&serde_json::json!({"stringValue": "requirements-analyst"}))
        })
        .unwrap_or_else(|| panic!("an attempt of requirements-analyst: {text}"));
    assert_eq!(
        attribute(analyst, "stagegate.status"),
        Some(&serde_json::json!({"stringValue": "ok"})),
        "{text}"
    );
    // Real times: the attempt lies within the stage, the stage within the run.
    let nanos = |span: &Value, key: &str| -> u128 {
        span[key]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| span[key].to_string())
            .parse()
            .unwrap_or_else(|_| panic!("{key} of {span}"))
    };
    assert!(nanos(run_span, "startTimeUnixNano") <= nanos(stage_span, "startTimeUnixNano"));
    assert!(nanos(stage_span, "startTimeUnixNano") <= nanos(analyst, "startTimeUnixNano"));
    assert!(nanos(analyst, "startTimeUnixNano") <= nanos(analyst, "endTimeUnixNano"));
    assert!(nanos(analyst, "endTimeUnixNano") <= nanos(stage_span, "endTimeUnixNano"));
    assert!(nanos(stage_span, "endTimeUnixNano") <= nanos(run_span, "endTimeUnixNano"));
    assert!(nanos(run_span, "startTimeUnixNano") > 1_600_000_000_000_000_000);
}

/// A collector that refuses the spans (a port nobody listens on would race with the other
/// test's collector for the number).
#[test]
fn a_failing_collector_is_a_warning_not_a_failure() {
    let collector = Collector::start("503 Service Unavailable");
    let endpoint = format!("http://127.0.0.1:{}", collector.port);
    let repo = repository();

    let approve = stagegate(repo.path(), &["approve", "spec"], Some(&endpoint));
    assert_eq!(approve.status.code(), Some(0), "{}", describe(&approve));
    let run = stagegate(repo.path(), &["run", "plan", "--no-input"], Some(&endpoint));
    assert_eq!(
        run.status.code(),
        Some(EXIT_AWAITING_DECISION),
        "{}",
        describe(&run)
    );
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(
        stderr
            .matches("warning: OpenTelemetry trace export")
            .count(),
        1,
        "one warning: {}",
        describe(&run)
    );
    assert!(
        collector
            .requests()
            .iter()
            .any(|request| request.path == "/v1/traces"),
        "the export was tried"
    );
}
