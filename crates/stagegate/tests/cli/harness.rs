//! The test harness: a temporary git repository with a spec-kit feature, a `stagegate.toml`
//! whose every agent is the scripted fake agent (`tests/fixtures/fake-agent.sh`), and a way to
//! run the real `stagegate` binary in it and read what happened.
//!
//! Behaviour is asserted from the fake agent's own call log (`start`/`end` lines with
//! millisecond timestamps), the exit codes, the files and `status --json`; never from how long
//! anything took on the wall clock.

use std::collections::BTreeMap;
use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use serde_json::Value;
use tempfile::TempDir;

/// The exit codes of PRODUCT.md §3.
pub const EXIT_DONE: i32 = 0;
pub const EXIT_INTERNAL: i32 = 1;
pub const EXIT_USAGE: i32 = 2;
pub const EXIT_STAGE_FAILED: i32 = 3;
pub const EXIT_REJECTED: i32 = 4;
pub const EXIT_INPUT_MISSING: i32 = 5;
pub const EXIT_ALREADY_DECIDED: i32 = 6;
pub const EXIT_AWAITING_DECISION: i32 = 10;

/// The feature every test repository has.
pub const FEATURE: &str = "specs/001-demo";

/// The built-in plan stage's parallel agents.
pub const PLAN_AGENTS: [&str; 4] = [
    "requirements-analyst",
    "solution-architect",
    "risk-compliance-analyst",
    "estimation-scope-analyst",
];

/// No command of the suite should take this long; a hang fails the test instead of the suite.
const COMMAND_LIMIT: Duration = Duration::from_secs(90);

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The fake agent, executable (git may not have kept its mode).
fn fake_agent() -> PathBuf {
    let path = fixtures().join("fake-agent.sh");
    let mode = std::fs::metadata(&path)
        .expect("tests/fixtures/fake-agent.sh exists")
        .permissions()
        .mode();
    if mode & 0o111 != 0o111 {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .expect("make the fake agent executable");
    }
    path
}

/// A TOML basic string.
/// Headless Chromium on this machine's closed network: no sandbox (tests may run as root), no
/// GPU, and none of the background connections that would be refused at every start.
pub const CHROMIUM_HEADLESS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
];

pub fn toml_string(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

pub struct TestRepo {
    _temp: TempDir,
    /// The repository root (where `stagegate.toml` and `.stagegate/` are).
    pub root: PathBuf,
    /// The fake agent's behaviour files, prompts and call log; outside the repository.
    pub fake_dir: PathBuf,
    /// `XDG_CONFIG_HOME` of every command (empty: the person's own user-level configuration
    /// never reaches a test); outside the repository.
    pub config_home: PathBuf,
    /// `stagegate.toml`, table by table, key by key (values are TOML).
    config: BTreeMap<String, BTreeMap<String, String>>,
}

impl TestRepo {
    /// A fresh repository: `git init`, the fixture feature `specs/001-demo/` (spec.md and
    /// tasks.md), and a `stagegate.toml` with short timeouts and every agent on the fake agent.
    pub fn new() -> Self {
        let temp = tempfile::Builder::new()
            .prefix("stagegate-cli-")
            .tempdir()
            .expect("a temporary directory");
        let base = temp.path().canonicalize().expect("canonical temp dir");
        let root = base.join("repo");
        let fake_dir = base.join("fake");
        std::fs::create_dir_all(root.join(FEATURE)).expect("create the feature directory");
        std::fs::create_dir_all(&fake_dir).expect("create the fake agent's directory");
        let git = std::process::Command::new("git")
            .args(["init", "-q"])
            .current_dir(&root)
            .status()
            .expect("git is installed");
        assert!(git.success(), "git init failed");
        for name in ["spec.md", "tasks.md"] {
            std::fs::copy(
                fixtures().join(FEATURE).join(name),
                root.join(FEATURE).join(name),
            )
            .expect("copy the fixture feature");
        }
        // The synthesizer writes the required artifacts; it declines the optional ones.
        std::fs::write(
            fake_dir.join("skip-artifacts"),
            "research.md\ndata-model.md\ncoverage_report.html\nsecurity_scan.json\n",
        )
        .expect("write skip-artifacts");

        let mut repo = TestRepo {
            _temp: temp,
            root,
            fake_dir,
            config_home: base.join("xdg-config"),
            config: BTreeMap::new(),
        };
        let agent = fake_agent();
        let log = repo.log_path();
        let fake_dir = repo.fake_dir.display().to_string();
        repo = repo
            .set("defaults", "backend", "\"fake\"")
            .set("defaults", "backoff", "\"200ms\"")
            .set("timeouts", "default", "\"3s\"")
            .set("timeouts", "review", "\"5s\"")
            .set("timeouts", "synthesis", "\"5s\"")
            .set("timeouts", "qa", "\"5s\"")
            .set("timeouts", "kill_grace", "\"500ms\"")
            .set("backends.fake", "kind", "\"command\"")
            .set(
                "backends.fake",
                "command",
                &format!("[{}]", toml_string(&agent.display().to_string())),
            )
            .set(
                "backends.fake",
                "env",
                &format!(
                    "{{ FAKE_LOG = {}, FAKE_DIR = {} }}",
                    toml_string(&log.display().to_string()),
                    toml_string(&fake_dir)
                ),
            );
        repo
    }

    /// A repository whose spec.md is approved (`stagegate approve spec`).
    pub fn with_approved_spec() -> Self {
        let repo = TestRepo::new();
        repo.run(&["approve", "spec"]).expect_code(EXIT_DONE);
        repo
    }

    /// Sets `key = value` (TOML) in `[table]` of `stagegate.toml`.
    pub fn set(mut self, table: &str, key: &str, value: &str) -> Self {
        self.config
            .entry(table.to_owned())
            .or_default()
            .insert(key.to_owned(), value.to_owned());
        self.write_config();
        self
    }

    /// What the fake agent `agent` does (see `tests/fixtures/fake-agent.sh`).
    pub fn behaviour(self, agent: &str, behaviour: &str) -> Self {
        std::fs::write(
            self.fake_dir.join(format!("{agent}.behaviour")),
            format!("{behaviour}\n"),
        )
        .expect("write a behaviour");
        self
    }

    fn write_config(&self) {
        let mut text = String::new();
        for (table, keys) in &self.config {
            text.push_str(&format!("[{table}]\n"));
            for (key, value) in keys {
                text.push_str(&format!("{key} = {value}\n"));
            }
            text.push('\n');
        }
        self.write("stagegate.toml", &text);
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.root.join(relative)
    }

    pub fn write(&self, relative: &str, content: &str) {
        let path = self.path(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create the parent directory");
        }
        std::fs::write(&path, content)
            .unwrap_or_else(|error| panic!("write {}: {error}", path.display()));
    }

    pub fn read(&self, relative: &str) -> String {
        let path = self.path(relative);
        std::fs::read_to_string(&path)
            .unwrap_or_else(|error| panic!("read {}: {error}", path.display()))
    }

    pub fn exists(&self, relative: &str) -> bool {
        self.path(relative).exists()
    }

    /// Runs `stagegate ARGS...` in the repository, with none of the caller's `STAGEGATE_*` or
    /// `SPECIFY_FEATURE_DIRECTORY` variables, and stderr not a terminal (plain progress lines).
    pub fn run(&self, args: &[&str]) -> Outcome {
        self.run_with_env(args, &[])
    }

    /// [`TestRepo::run`] with extra environment variables for the child only.
    pub fn run_with_env(&self, args: &[&str], environment: &[(&str, &str)]) -> Outcome {
        let mut command = Command::cargo_bin("stagegate").expect("the stagegate binary");
        command
            .current_dir(&self.root)
            .args(args)
            .env_remove("SPECIFY_FEATURE_DIRECTORY")
            .env("NO_COLOR", "1")
            .env("XDG_CONFIG_HOME", &self.config_home)
            .timeout(COMMAND_LIMIT);
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("STAGEGATE_") {
                command.env_remove(&name);
            }
        }
        command.envs(environment.iter().copied());
        let output = command.output().expect("run stagegate");
        Outcome {
            args: args.iter().map(|arg| (*arg).to_owned()).collect(),
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Starts `stagegate ARGS...` in the background (same environment as [`TestRepo::run`]).
    pub fn spawn(&self, args: &[&str]) -> std::process::Child {
        self.spawn_wrapped(&[], args)
    }

    /// Starts `WRAPPER... /path/to/stagegate ARGS...` in the background (say `unshare --pid
    /// --fork`), with the environment of [`TestRepo::spawn`].
    pub fn spawn_wrapped(&self, wrapper: &[&str], args: &[&str]) -> std::process::Child {
        let stagegate = assert_cmd::cargo::cargo_bin("stagegate");
        let mut command = match wrapper.split_first() {
            None => std::process::Command::new(&stagegate),
            Some((program, wrapper_args)) => {
                let mut command = std::process::Command::new(program);
                command.args(wrapper_args).arg(&stagegate);
                command
            }
        };
        command
            .current_dir(&self.root)
            .args(args)
            .env_remove("SPECIFY_FEATURE_DIRECTORY")
            .env("NO_COLOR", "1")
            .env("XDG_CONFIG_HOME", &self.config_home)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("STAGEGATE_") {
                command.env_remove(&name);
            }
        }
        command.spawn().expect("start stagegate")
    }

    /// `stagegate run plan --no-input` up to the plan gate; returns the run id.
    pub fn run_plan_to_gate(&self) -> String {
        self.run(&["run", "plan", "--no-input"])
            .expect_code(EXIT_AWAITING_DECISION)
            .run_id()
    }

    /// `status --json` (every run).
    pub fn status(&self) -> Value {
        self.run(&["status", "--json"])
            .expect_code(EXIT_DONE)
            .json()
    }

    /// `status RUN --json`.
    pub fn run_status(&self, run_id: &str) -> Value {
        self.run(&["status", run_id, "--json"])
            .expect_code(EXIT_DONE)
            .json()
    }

    /// How many runs the state database holds.
    pub fn run_count(&self) -> usize {
        if !self.exists(".stagegate") {
            return 0;
        }
        self.status()["runs"]
            .as_array()
            .expect("status --json has runs")
            .len()
    }

    pub fn run_dir(&self, run_id: &str) -> PathBuf {
        self.root.join(".stagegate/runs").join(run_id)
    }

    /// Every attempt of `run` as `stagegate show RUN` lists it.
    pub fn attempts(&self, run_id: &str) -> Vec<AttemptRow> {
        let listing = self.run(&["show", run_id]).expect_code(EXIT_DONE).stdout;
        // The attempts come first, one per line; anything after them (line comments) is not.
        listing
            .lines()
            .map(|line| line.split_whitespace().collect::<Vec<&str>>())
            .take_while(|words| words.len() >= 6 && words[3] == "attempt")
            .map(|words| AttemptRow {
                stage: words[0].to_owned(),
                phase: words[1].to_owned(),
                agent: words[2].to_owned(),
                attempt: words[4].parse().expect("an attempt number"),
                outcome: words[5].to_owned(),
            })
            .collect()
    }

    /// The `kind` text (`prompt`, `output`, `stderr`) of `agent`'s attempt in `stage`, through
    /// `stagegate show`; `None` when the attempt recorded none.
    pub fn attempt_text(
        &self,
        run_id: &str,
        stage: &str,
        agent: &str,
        attempt: u32,
        kind: &str,
    ) -> Option<String> {
        let number = attempt.to_string();
        let args = [
            "show",
            run_id,
            "--stage",
            stage,
            "--agent",
            agent,
            "--attempt",
            &number,
            "--file",
            kind,
        ];
        let outcome = self.run(&args);
        match outcome.code {
            EXIT_DONE => Some(outcome.stdout),
            _ if outcome.stderr.contains("recorded no") => None,
            _ => panic!("stagegate {args:?} failed: {outcome:?}"),
        }
    }

    /// The prompts of every recorded attempt of `agent` (for a synthesis,
    /// `synthesizer.artifact`) in `stage`, in attempt order.
    pub fn prompts_of(&self, run_id: &str, stage: &str, agent: &str) -> Vec<String> {
        self.attempts(run_id)
            .into_iter()
            .filter(|row| row.stage == stage && row.agent == agent)
            .filter_map(|row| self.attempt_text(run_id, stage, agent, row.attempt, "prompt"))
            .collect()
    }

    fn log_path(&self) -> PathBuf {
        self.fake_dir.join("calls.log")
    }

    /// Every call the fake agent logged, in the order they started.
    pub fn calls(&self) -> Calls {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let mut calls: Vec<Call> = Vec::new();
        for line in text.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            assert!(fields.len() >= 7, "malformed call log line: {line}");
            let at: u64 = fields[1].parse().expect("a millisecond timestamp");
            let key = CallKey {
                stage: fields[2].to_owned(),
                phase: fields[3].to_owned(),
                agent: fields[4].to_owned(),
                attempt: fields[5].parse().expect("an attempt number"),
                artifact: fields[6].to_owned(),
            };
            match fields[0] {
                "start" => calls.push(Call {
                    key,
                    start: at,
                    end: None,
                    status: None,
                }),
                "end" => {
                    let call = calls
                        .iter_mut()
                        .rev()
                        .find(|call| call.key == key && call.end.is_none())
                        .unwrap_or_else(|| panic!("an end without a start: {line}"));
                    call.end = Some(at);
                    call.status = fields.get(7).map(|status| (*status).to_owned());
                }
                other => panic!("unknown call log entry {other}: {line}"),
            }
        }
        calls.sort_by_key(|call| call.start);
        Calls(calls)
    }

    /// The prompt the fake agent was given for one call.
    pub fn prompt_seen(
        &self,
        stage: &str,
        phase: &str,
        agent: &str,
        artifact: &str,
        attempt: u32,
    ) -> String {
        let path = self.fake_dir.join(format!(
            "prompt.{stage}.{phase}.{agent}.{artifact}.{attempt}.md"
        ));
        std::fs::read_to_string(&path)
            .unwrap_or_else(|error| panic!("read {}: {error}", path.display()))
    }

    /// `status --json`, or `None` when the command fails (a reader can lose a race with the
    /// process writing the state database; pollers try again).
    pub fn try_status(&self) -> Option<Value> {
        let outcome = self.run(&["status", "--json"]);
        (outcome.code == EXIT_DONE)
            .then(|| serde_json::from_str(&outcome.stdout).ok())
            .flatten()
    }

    /// `status RUN --json`, or `None` when the command fails (see [`TestRepo::try_status`]).
    pub fn try_run_status(&self, run_id: &str) -> Option<Value> {
        let outcome = self.run(&["status", run_id, "--json"]);
        (outcome.code == EXIT_DONE)
            .then(|| serde_json::from_str(&outcome.stdout).ok())
            .flatten()
    }

    /// The pid of the fake agent `agent` once its call in `phase` started (behaviour
    /// `started-then-sleep`), waiting for it up to a deadline.
    pub fn wait_until_started(&self, agent: &str, phase: &str) -> u32 {
        self.wait_for_pid(&format!("{agent}.{phase}.started"))
    }

    /// Kills the background `sleep` a `started-then-sleep` call of `agent` in `phase` left
    /// behind (it outlives its fake agent when stagegate is killed), if it still runs.
    pub fn kill_leftover_sleep(&self, agent: &str, phase: &str) {
        let path = self.fake_dir.join(format!("{agent}.{phase}.sleep.pid"));
        if let Some(pid) = std::fs::read_to_string(path)
            .ok()
            .and_then(|text| text.trim().parse::<u32>().ok())
            && process_alive(pid)
        {
            let _ = std::process::Command::new("kill")
                .args(["-9", &pid.to_string()])
                .status();
        }
    }

    /// Reads a pid the fake agent wrote, waiting for it up to a deadline.
    pub fn wait_for_pid(&self, file: &str) -> u32 {
        let path = self.fake_dir.join(file);
        poll(Duration::from_secs(10), || {
            std::fs::read_to_string(&path)
                .ok()
                .and_then(|text| text.trim().parse().ok())
        })
        .unwrap_or_else(|| panic!("no pid in {}", path.display()))
    }
}

/// Runs `work` on the repository's state database (no stagegate runs meanwhile).
pub fn with_store<T>(repo: &TestRepo, work: impl AsyncFnOnce(&stagegate_store::Store) -> T) -> T {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let store = stagegate_store::Store::open(&repo.path(".stagegate"))
            .await
            .expect("open the state database");
        let value = work(&store).await;
        store.close().await;
        value
    })
}

/// Calls `probe` until it answers or `limit` passes.
pub fn poll<T>(limit: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = probe() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Calls `probe` until it answers or `limit` passes; fails the test naming `what` otherwise.
pub fn wait_until<T>(limit: Duration, what: &str, probe: impl FnMut() -> Option<T>) -> T {
    poll(limit, probe).unwrap_or_else(|| panic!("gave up after {limit:?} waiting for {what}"))
}

/// Kills a process started with [`TestRepo::spawn`] with SIGKILL (`kill -9`: no cleanup runs)
/// and reaps it.
pub fn kill_9(child: &mut std::process::Child) {
    // `Child::kill` sends SIGKILL on Unix.
    child.kill().expect("kill -9 stagegate");
    let status = child.wait().expect("reap stagegate");
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9),
        "stagegate ended before it was killed: {status:?}"
    );
}

/// Waits up to `limit` for a process started with [`TestRepo::spawn`] (`args` are its
/// arguments, for messages) to end by itself, and collects how it ended. Its output must fit
/// the pipes' buffers (progress lines and a stage's JSON events do).
pub fn wait_for_exit(mut child: std::process::Child, args: &[&str], limit: Duration) -> Outcome {
    let ended = poll(limit, || child.try_wait().expect("wait for stagegate"));
    if ended.is_none() {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "`stagegate {}` did not end within {limit:?}",
            args.join(" ")
        );
    }
    let output = child
        .wait_with_output()
        .expect("collect stagegate's output");
    Outcome {
        args: args.iter().map(|arg| (*arg).to_owned()).collect(),
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Whether a process is alive: it exists and is not a zombie waiting for its reaper (an
/// orphan's reaping by init can lag, and in a container init may not reap at all).
pub fn process_alive(pid: u32) -> bool {
    let stat = Path::new("/proc").join(pid.to_string()).join("stat");
    if Path::new("/proc/self/stat").exists() {
        return match std::fs::read_to_string(stat) {
            // `PID (COMMAND) STATE …`: the state follows the last parenthesis.
            Ok(text) => text
                .rsplit_once(')')
                .is_some_and(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X'])),
            Err(_) => false,
        };
    }
    std::process::Command::new("kill")
        .args(["-0", &pid.to_string()])
        .status()
        .is_ok_and(|status| status.success())
}

/// How a `stagegate` command ended.
/// One line of `stagegate show RUN`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRow {
    pub stage: String,
    pub phase: String,
    /// The agent, or `synthesizer.artifact` for a synthesis.
    pub agent: String,
    pub attempt: u32,
    /// `ok`, `cached`, `failed`…, or `running`.
    pub outcome: String,
}

pub struct Outcome {
    args: Vec<String>,
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl fmt::Debug for Outcome {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "`stagegate {}` exited with {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.args.join(" "),
            self.code,
            self.stdout,
            self.stderr
        )
    }
}

impl Outcome {
    pub fn expect_code(self, code: i32) -> Self {
        assert_eq!(self.code, code, "unexpected exit code: {self:?}");
        self
    }

    pub fn stderr_has(self, text: &str) -> Self {
        assert!(
            self.stderr.contains(text),
            "stderr does not contain {text:?}: {self:?}"
        );
        self
    }

    pub fn stdout_has(self, text: &str) -> Self {
        assert!(
            self.stdout.contains(text),
            "stdout does not contain {text:?}: {self:?}"
        );
        self
    }

    /// The run id from the `run ID on FEATURE` progress line or the gate's message.
    pub fn run_id(&self) -> String {
        let from_line = |line: &str| {
            let rest = line.strip_prefix("run ")?;
            let id = rest.split_whitespace().next()?;
            id.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
                .then(|| id.to_owned())
        };
        // With `--json` there are no progress lines: the events name the run.
        let from_event = |line: &str| {
            let event: Value = serde_json::from_str(line).ok()?;
            event.get("run_id")?.as_str().map(str::to_owned)
        };
        self.stderr
            .lines()
            .find_map(from_line)
            .or_else(|| self.stdout.lines().find_map(from_event))
            .unwrap_or_else(|| panic!("no run id on stderr or in the events: {self:?}"))
    }

    /// stdout as one JSON document.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|error| panic!("stdout is not JSON ({error}): {self:?}"))
    }

    /// stdout as JSON lines, each one object.
    pub fn json_lines(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .filter(|line| !line.trim().is_empty())
            .map(|line| {
                let value: Value = serde_json::from_str(line)
                    .unwrap_or_else(|error| panic!("not a JSON line ({error}): {line}\n{self:?}"));
                assert!(value.is_object(), "not a JSON object: {line}");
                value
            })
            .collect()
    }
}

/// Which call: the fields of a call log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallKey {
    pub stage: String,
    pub phase: String,
    pub agent: String,
    pub attempt: u32,
    /// `-` when the call writes no artifact.
    pub artifact: String,
}

/// One call of the fake agent, from its log.
#[derive(Debug, Clone)]
pub struct Call {
    pub key: CallKey,
    pub start: u64,
    /// `None` when it never finished (killed).
    pub end: Option<u64>,
    /// `ok` or `fail`, as the fake agent logged it.
    pub status: Option<String>,
}

impl Call {
    pub fn end(&self) -> u64 {
        self.end
            .unwrap_or_else(|| panic!("call {:?} never logged its end", self.key))
    }

    fn interval(&self) -> (u64, u64) {
        (self.start, self.end.unwrap_or(u64::MAX))
    }
}

/// The call log.
#[derive(Debug, Clone)]
pub struct Calls(pub Vec<Call>);

impl Calls {
    pub fn phase(&self, phase: &str) -> Vec<&Call> {
        self.0
            .iter()
            .filter(|call| call.key.phase == phase)
            .collect()
    }

    pub fn of_agent(&self, phase: &str, agent: &str) -> Vec<&Call> {
        self.0
            .iter()
            .filter(|call| call.key.phase == phase && call.key.agent == agent)
            .collect()
    }

    pub fn synthesis_of(&self, artifact: &str) -> Vec<&Call> {
        self.0
            .iter()
            .filter(|call| call.key.phase == "synthesis" && call.key.artifact == artifact)
            .collect()
    }

    /// The most calls running at once among `calls` (an end and a start logged in the same
    /// millisecond do not overlap: the log's times lie inside each process's lifetime).
    pub fn max_overlap(calls: &[&Call]) -> usize {
        let mut edges: Vec<(u64, i32)> = Vec::new();
        for call in calls {
            let (start, end) = call.interval();
            edges.push((start, 1));
            edges.push((end, -1));
        }
        // Ends before starts at the same instant.
        edges.sort();
        let mut running = 0;
        let mut most = 0;
        for (_, change) in edges {
            running += change;
            most = most.max(running);
        }
        usize::try_from(most).unwrap_or(0)
    }
}
