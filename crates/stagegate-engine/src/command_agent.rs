//! The `command` backend: an agent that is a program (`claude -p`, a script) run once per attempt.
//!
//! The program is spawned directly, never through a shell, in the repository root, as the leader
//! of its own process group. The prompt goes to its stdin; its stdout is the answer and its
//! stderr is kept (the last 64 KiB) for debugging. Who is asking travels in `STAGEGATE_*`
//! variables. An attempt ends in one of four ways, whichever comes first: the program exits, the
//! deadline passes, the attempt is cancelled, or stdout grows past the output cap. In every case
//! whatever is left of the process group is stopped before the attempt returns (see
//! `process_group`), so an attempt never leaves anything running.
//!
//! A CLI coding agent in its headless JSON mode prints an envelope rather than the bare answer;
//! the backend's `output_format` says how to read it ([`crate::output_format`]). A backend tied to
//! a spec-kit integration honours spec-kit's `SPECKIT_INTEGRATION_<KEY>_EXECUTABLE` and
//! `_EXTRA_ARGS` variables ([`apply_speckit_integration`]).

use std::collections::BTreeMap;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::pin::pin;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::Signal;
use stagegate_settings::OutputFormat;
use tokio::io::AsyncWriteExt;
use tokio::process::{ChildStdin, Command};
use tokio::time::{Instant, sleep_until};

use crate::agent_error::permanent_from_stderr;
use crate::backend::{AgentOutcome, AgentRequest, Backend, BoxFuture, Failure};
use crate::bounded_output::{CappedOutput, DrainStop, OverCap, TailBuffer};
use crate::headless_arguments::insert_before_output_flags;
use crate::output_format::{self, parse_output, reported_failure};
use crate::process_group::{GroupEnd, ProcessGroupGuard, terminate_group};
use crate::secrets;
use crate::supervisor::{
    MEMORY_EXCEEDED_EXIT, MEMORY_EXCEEDED_PREFIX, SPAWN_FAILED_EXIT, SPAWN_FAILED_PREFIX,
    SUPERVISOR_SLACK, SupervisorCommand, installed_supervisor,
};

/// How much of a program's stderr is kept: the end, where the reason for a failure usually is.
const STDERR_TAIL_BYTES: usize = 64 * 1024;

/// The longest stderr excerpt put into a failure message; the full tail is in the outcome.
const STDERR_EXCERPT_CHARS: usize = 300;

/// How many of stderr's last lines a failure message quotes at most.
const STDERR_EXCERPT_LINES: usize = 3;

/// After the group is stopped, how long to keep reading pipes that are still open. They can only
/// be held by a process that left the group (`setsid`); its output is not waited for longer.
const DRAIN_AFTER_STOP: Duration = Duration::from_millis(500);

/// A crash this soon after the start, under a memory cap, is the cap's doing, not bad luck: it
/// happens again on every attempt.
const CRASH_AT_START: Duration = Duration::from_secs(3);

/// A `command` backend could not be built from its settings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandAgentError {
    #[error(
        "the backend's command is empty; give the program and its arguments, e.g. command = [\"claude\", \"-p\"]"
    )]
    EmptyCommand,
    /// A `SPECKIT_INTEGRATION_<KEY>_EXTRA_ARGS` value with an unclosed quote.
    #[error(
        "{variable} has an unclosed quote ({reason}); group words with matching single or double quotes, e.g. '--flag \"two words\"'"
    )]
    ExtraArguments { variable: String, reason: String },
}

/// An agent that is a program run once per attempt. See the module documentation.
#[derive(Clone)]
pub struct CommandAgent {
    program: String,
    args: Vec<String>,
    env: BTreeMap<String, String>,
    /// How stdout is read.
    output_format: OutputFormat,
    /// The backend's name in `stagegate.toml`, so that messages can say which setting to fix.
    name: Option<String>,
    /// What the program runs under, if anything (see `supervisor`).
    supervisor: Option<SupervisorCommand>,
    /// The backend's own memory cap (`backends.NAME.memory`), replacing the agent's.
    memory_bytes: Option<u64>,
}

impl CommandAgent {
    /// `command` is the program followed by its arguments (the program is looked up on `PATH`
    /// unless it contains a `/`; a relative path is resolved from the repository root). `env` is
    /// added to the environment stagegate itself runs with.
    pub fn new(
        command: Vec<String>,
        env: BTreeMap<String, String>,
    ) -> Result<Self, CommandAgentError> {
        let mut command = command.into_iter();
        let program = command.next().ok_or(CommandAgentError::EmptyCommand)?;
        if program.is_empty() {
            return Err(CommandAgentError::EmptyCommand);
        }
        Ok(CommandAgent {
            program,
            args: command.collect(),
            env,
            output_format: OutputFormat::Text,
            name: None,
            supervisor: installed_supervisor(),
            memory_bytes: None,
        })
    }

    /// Reads stdout as `format` says (`text` unless told otherwise).
    pub fn with_output_format(mut self, format: OutputFormat) -> Self {
        self.output_format = format;
        self
    }

    /// Marks the variables `names` (from `env`, else inherited from this process) as secrets:
    /// their values are redacted from the answer, stderr and failure messages (see
    /// [`crate::secrets`]).
    pub fn with_secret_env(self, names: &[String]) -> Self {
        for name in names {
            let value = self
                .env
                .get(name)
                .cloned()
                .or_else(|| std::env::var(name).ok());
            if let Some(value) = value {
                secrets::remember(&value);
            }
        }
        self
    }

    /// Names the backend (`[backends.NAME]`), so that a missing program's message points at
    /// `backends.NAME.command`.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Caps the agent's memory at `bytes` whatever the agent's own cap (`defaults.agent_memory`)
    /// says: the backend knows what its program needs.
    pub fn with_memory_cap(mut self, bytes: Option<u64>) -> Self {
        self.memory_bytes = bytes;
        self
    }

    /// Runs the program under `supervisor` (the installed one unless told otherwise), or
    /// directly with `None`.
    pub fn supervised_by(mut self, supervisor: Option<SupervisorCommand>) -> Self {
        self.supervisor = supervisor;
        self
    }

    /// The `tokio` command for one attempt: everything but the spawn.
    fn command_for(&self, request: &AgentRequest) -> Command {
        let identity = &request.identity;
        let memory_limit_bytes = self.memory_limit(request);
        let mut command = match &self.supervisor {
            None => Command::new(&self.program),
            Some(supervisor) => {
                let mut command = Command::new(&supervisor.program);
                command
                    .args(&supervisor.args)
                    .arg("--parent")
                    .arg(std::process::id().to_string())
                    .arg("--grace-ms")
                    .arg(request.kill_grace.as_millis().to_string())
                    .arg("--memory-bytes")
                    .arg(memory_limit_bytes.to_string())
                    .arg("--")
                    .arg(&self.program);
                command
            }
        };
        command
            .args(&self.args)
            .current_dir(&request.repo_root)
            .envs(&self.env)
            .env("STAGEGATE_RUN_ID", &identity.run_id)
            .env("STAGEGATE_STAGE", &identity.stage)
            .env("STAGEGATE_PHASE", identity.phase.as_str())
            .env("STAGEGATE_AGENT", &identity.agent)
            .env("STAGEGATE_ATTEMPT", identity.attempt.to_string())
            .env("STAGEGATE_FEATURE_DIR", &request.feature_dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own group, so that a timeout can stop everything the agent started.
            .process_group(0)
            // Backstop for a dropped attempt; `ProcessGroupGuard` stops the rest of the group. A
            // supervisor must not be killed: the guard asks it to kill the tree instead.
            .kill_on_drop(self.supervisor.is_none());
        match &identity.artifact {
            Some(artifact) => command.env("STAGEGATE_ARTIFACT", artifact),
            // Not inherited either: a stagegate running inside an agent must not leak its own.
            None => command.env_remove("STAGEGATE_ARTIFACT"),
        };
        // A supervisor measures what the tree really uses; without one, the data segment is
        // capped, which is all a lone process can do.
        let data_limit = if self.supervisor.is_some() {
            0
        } else {
            memory_limit_bytes
        };
        confine_child(&mut command, data_limit);
        command
    }

    /// Where to point someone whose command cannot be started.
    fn setting(&self) -> String {
        match &self.name {
            Some(name) => format!("backends.{name}.command"),
            None => "the backend's `command` setting".to_owned(),
        }
    }

    /// The memory cap of an attempt: the backend's, else the agent's.
    fn memory_limit(&self, request: &AgentRequest) -> u64 {
        self.memory_per_attempt(request.memory_limit_bytes)
    }

    /// Where to point someone whose agent needs more memory.
    fn memory_setting(&self) -> String {
        match &self.name {
            Some(name) => format!("backends.{name}.memory (or defaults.agent_memory)"),
            None => "defaults.agent_memory".to_owned(),
        }
    }
}

/// Shows the names of the `env` variables, never their values (some are secrets).
impl std::fmt::Debug for CommandAgent {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("CommandAgent")
            .field("program", &self.program)
            .field("args", &self.args)
            .field("env", &self.env.keys().collect::<Vec<_>>())
            .field("output_format", &self.output_format)
            .field("name", &self.name)
            .finish()
    }
}

impl Backend for CommandAgent {
    fn kind(&self) -> &'static str {
        "command"
    }

    /// Each attempt is a process tree held to the backend's cap, else the agent's.
    fn memory_per_attempt(&self, agent_limit_bytes: u64) -> u64 {
        self.memory_bytes.unwrap_or(agent_limit_bytes)
    }

    /// The program and its arguments. The environment table is left out: it holds
    /// configuration for the program (and perhaps secrets), rarely something that changes the
    /// answer, and a key must never depend on a secret.
    fn fingerprint(&self) -> String {
        let mut fingerprint = format!("command:{}\0{}", self.program, self.args.join("\0"));
        // The cached answer is the parsed one; text keeps the keys it always had.
        if self.output_format != OutputFormat::Text {
            fingerprint.push_str("\0output_format=");
            fingerprint.push_str(self.output_format.as_str());
        }
        fingerprint
    }

    fn run(&self, request: AgentRequest) -> BoxFuture<AgentOutcome> {
        let command = self.command_for(&request);
        let memory_limit_bytes = self.memory_limit(&request);
        let program = Program {
            memory_limit_bytes,
            name: self.program.clone(),
            setting: self.setting(),
            memory_setting: self.memory_setting(),
            output_format: self.output_format,
            supervised: self.supervisor.is_some(),
        };
        Box::pin(run_attempt(command, program, request))
    }
}

/// What messages say about the program.
struct Program {
    name: String,
    setting: String,
    memory_setting: String,
    /// The attempt's memory cap, bytes (0: none).
    memory_limit_bytes: u64,
    output_format: OutputFormat,
    /// Run under the supervisor, which leads the group.
    supervised: bool,
}

/// Confines the child between fork and exec: it dies with stagegate (`PR_SET_PDEATHSIG`), and,
/// when it runs without the supervisor (which caps what the tree really uses), its data segment
/// is capped with `RLIMIT_DATA`.
///
/// Not `RLIMIT_AS`: Node reserves far more address space than it uses, and a 512 MiB address
/// space limit kills Node programs at start-up. `RLIMIT_DATA` has the same trap for Bun (Claude
/// Code 2.x dies of SIGTRAP under 256 MB) and misses shared mappings, so it is only the fallback
/// of library users who run agents unsupervised. A limit of 0 means no cap. The limit
/// is set as both soft and hard (never above the current hard limit, which would fail), so the
/// agent cannot raise it again.
#[expect(
    unsafe_code,
    reason = "`pre_exec` is unsafe because the closure runs between fork and exec; it only calls \
              prctl, getppid, getrlimit and setrlimit, which are async-signal-safe, and \
              allocates nothing"
)]
fn confine_child(command: &mut Command, limit_bytes: u64) {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};

    // Also: if stagegate itself is killed (`kill -9`, the terminal closed), the agent gets
    // SIGKILL instead of running on as an orphan. The parent's pid is taken before the fork so
    // that a parent that died before `prctl` took effect is noticed too.
    #[cfg(target_os = "linux")]
    let parent = nix::unistd::getpid();
    // SAFETY: see the `expect` reason: no allocation, no locks, only system calls.
    unsafe {
        command.pre_exec(move || {
            #[cfg(target_os = "linux")]
            {
                nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)?;
                if nix::unistd::getppid() != parent {
                    return Err(io::Error::from_raw_os_error(nix::libc::ESRCH));
                }
            }
            if limit_bytes != 0 {
                let (_, hard) = getrlimit(Resource::RLIMIT_DATA)?;
                let limit = limit_bytes.min(hard);
                setrlimit(Resource::RLIMIT_DATA, limit, limit)?;
            }
            Ok(())
        });
    }
}

/// Why the first phase of an attempt ended.
enum Stop {
    Exited(io::Result<ExitStatus>),
    OverCap(OverCap),
    /// The program said it is stuck and will not end by itself.
    DeadEnd(String),
    Deadline,
    Cancelled,
}

async fn run_attempt(
    mut command: Command,
    program: Program,
    request: AgentRequest,
) -> AgentOutcome {
    let started = Instant::now();
    if request.cancel.is_cancelled() {
        return AgentOutcome::failure(Failure::Cancelled);
    }
    if started >= request.deadline {
        return AgentOutcome::failure(Failure::TimedOut { after_ms: 0 });
    }

    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(error) => {
            return AgentOutcome::failure(spawn_failure(&error, &program, &request.repo_root));
        }
    };
    // From here on, returning early (or being dropped) kills the group.
    let Some(pid) = child.id() else {
        // Only possible once the child has been waited for, which has not happened yet.
        return AgentOutcome::failure(Failure::retryable(format!(
            "`{}` ended before stagegate could watch it",
            program.name
        )));
    };
    let mut guard = if program.supervised {
        ProcessGroupGuard::supervised(pid)
    } else {
        ProcessGroupGuard::new(pid)
    };
    // A supervisor escalates by itself after `kill_grace`; it gets a little longer before the
    // group (the supervisor with it) is killed from here.
    let group_grace = if program.supervised {
        request.kill_grace + SUPERVISOR_SLACK
    } else {
        request.kill_grace
    };
    let (Some(stdin), Some(mut stdout), Some(mut stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return AgentOutcome::failure(Failure::permanent(
            "the program's pipes were not set up (a bug in stagegate)",
        ));
    };

    let mut answer = CappedOutput::new(request.output_cap_bytes)
        .watching(output_format::dead_end_detector(program.output_format));
    let mut diagnostics = TailBuffer::new(STDERR_TAIL_BYTES);
    let (stop, stopped_after, over_cap_later, group_end) = {
        let mut write = pin!(write_prompt(stdin, request.prompt));
        let mut read_answer = pin!(answer.drain(&mut stdout));
        let mut read_diagnostics = pin!(diagnostics.drain(&mut stderr));
        let mut deadline = pin!(sleep_until(request.deadline));
        let mut cancelled = pin!(request.cancel.cancelled());
        let (mut write_done, mut answer_done, mut diagnostics_done) = (false, false, false);

        // Phase 1: run until the program exits or something stops it, feeding stdin and
        // draining both pipes all along so that no order of reads and writes can deadlock.
        let stop = loop {
            tokio::select! {
                biased;
                () = &mut cancelled => break Stop::Cancelled,
                () = &mut deadline => break Stop::Deadline,
                result = &mut read_answer, if !answer_done => {
                    answer_done = true;
                    match result {
                        Ok(()) => {}
                        Err(DrainStop::OverCap(over_cap)) => break Stop::OverCap(over_cap),
                        Err(DrainStop::DeadEnd(said)) => break Stop::DeadEnd(said),
                    }
                }
                () = &mut read_diagnostics, if !diagnostics_done => diagnostics_done = true,
                () = &mut write, if !write_done => write_done = true,
                status = child.wait() => break Stop::Exited(status),
            }
        };
        let stopped_after = started.elapsed();

        // Phase 2: stop whatever is left of the group (after an exit: what the program started
        // and left behind), still draining so that last words on stderr are kept and nothing
        // blocks on a full pipe. The stdin writer is dropped: nobody needs the rest of the prompt.
        let mut over_cap_later = None;
        let mut group_end = None;
        let mut stop_group = pin!(terminate_group(&mut child, &mut guard, group_grace));
        while group_end.is_none() {
            tokio::select! {
                end = &mut stop_group => group_end = Some(end),
                result = &mut read_answer, if !answer_done => {
                    answer_done = true;
                    over_cap_later = over_cap_of(result);
                }
                () = &mut read_diagnostics, if !diagnostics_done => diagnostics_done = true,
            }
        }
        // The group is gone, so its pipe ends are closed and the rest is already buffered; only
        // a process that left the group can keep a pipe open, and it is not waited for long.
        let drain_end = Instant::now() + DRAIN_AFTER_STOP;
        while !(answer_done && diagnostics_done) {
            tokio::select! {
                result = &mut read_answer, if !answer_done => {
                    answer_done = true;
                    over_cap_later = over_cap_of(result);
                }
                () = &mut read_diagnostics, if !diagnostics_done => diagnostics_done = true,
                () = sleep_until(drain_end) => break,
            }
        }
        (stop, stopped_after, over_cap_later, group_end)
    };

    let mut stderr_tail = diagnostics;
    if group_end == Some(GroupEnd::Lingering) {
        stderr_tail.push(
            format!(
                "\nstagegate: processes of group {pid} were still running after SIGKILL; \
                 they may be stuck in the kernel\n"
            )
            .as_bytes(),
        );
    }
    // Redacted before the failure message quotes (and cuts) it.
    let stderr = secrets::redact_vec(stderr_tail.into_bytes());
    let mut usage = None;
    let result = match (stop, over_cap_later) {
        (Stop::Cancelled, _) => Err(Failure::Cancelled),
        (Stop::DeadEnd(said), _) => Err(Failure::retryable(format!(
            "`{}` cannot reach its model and waits for it indefinitely; it said: {}",
            program.name,
            secrets::redact(&said)
        ))),
        (Stop::Deadline, _) => Err(Failure::TimedOut {
            after_ms: u64::try_from(stopped_after.as_millis()).unwrap_or(u64::MAX),
        }),
        (Stop::OverCap(over_cap), _) | (Stop::Exited(_), Some(over_cap)) => {
            Err(over_cap_failure(over_cap, request.output_cap_bytes))
        }
        (Stop::Exited(Err(error)), None) => Err(Failure::retryable(format!(
            "could not wait for `{}` to finish: {error}",
            program.name
        ))),
        (Stop::Exited(Ok(status)), None)
            if program.supervised
                && let Some(error) = supervisor_spawn_error(status, &stderr) =>
        {
            Err(spawn_failure(&error, &program, &request.repo_root))
        }
        (Stop::Exited(Ok(status)), None)
            if program.supervised
                && let Some((used, cap)) = supervisor_memory_exceeded(status, &stderr) =>
        {
            Err(Failure::permanent(format!(
                "`{}` used {} of memory, over its agent_memory cap of {}, and was stopped; \
                 raise {}",
                program.name,
                readable_size(used),
                readable_size(cap),
                program.memory_setting
            )))
        }
        (Stop::Exited(Ok(status)), None)
            if !program.supervised
                && program.memory_limit_bytes != 0
                && stopped_after < CRASH_AT_START
                && crashed(status) =>
        {
            Err(Failure::permanent(format!(
                "`{}` crashed right after it started ({}) under the {} RLIMIT_DATA cap, which \
                 counts reserved address space; raise {}",
                program.name,
                describe_status(status),
                readable_size(program.memory_limit_bytes),
                program.memory_setting
            )))
        }
        (Stop::Exited(Ok(status)), None) => {
            // Redacted before a parse error quotes (and cuts) it.
            let stdout = secrets::redact_vec(answer.into_bytes());
            exit_result(status, stdout, &stderr, &program).and_then(|stdout| {
                let parsed = parse_output(program.output_format, stdout)?;
                usage = parsed.usage;
                Ok(parsed.answer)
            })
        }
    };
    AgentOutcome {
        result,
        stderr,
        usage,
    }
}

/// A read that went past the cap after the program was already stopping; a dead end said
/// then changes nothing.
fn over_cap_of(result: Result<(), DrainStop>) -> Option<OverCap> {
    match result {
        Err(DrainStop::OverCap(over_cap)) => Some(over_cap),
        Ok(()) | Err(DrainStop::DeadEnd(_)) => None,
    }
}

/// The error a supervisor could not start the agent with: it exits with [`SPAWN_FAILED_EXIT`]
/// and says the error number on its last stderr line.
fn supervisor_spawn_error(status: ExitStatus, stderr: &[u8]) -> Option<io::Error> {
    if status.code() != Some(i32::from(SPAWN_FAILED_EXIT)) {
        return None;
    }
    let text = String::from_utf8_lossy(stderr);
    let last = text.lines().rev().find(|line| !line.trim().is_empty())?;
    let errno = last
        .trim()
        .strip_prefix(SPAWN_FAILED_PREFIX)?
        .parse()
        .ok()?;
    Some(io::Error::from_raw_os_error(errno))
}

/// What the supervisor says when it stopped the tree for using too much memory: used and cap in
/// bytes.
fn supervisor_memory_exceeded(status: ExitStatus, stderr: &[u8]) -> Option<(u64, u64)> {
    if status.code() != Some(i32::from(MEMORY_EXCEEDED_EXIT)) {
        return None;
    }
    let text = String::from_utf8_lossy(stderr);
    let last = text.lines().rev().find(|line| !line.trim().is_empty())?;
    let (used, cap) = last
        .trim()
        .strip_prefix(MEMORY_EXCEEDED_PREFIX)?
        .split_once(' ')?;
    Some((used.parse().ok()?, cap.parse().ok()?))
}

/// Killed by a signal a program sends itself when an allocation fails (Bun: `SIGTRAP`, V8 and
/// glibc: `SIGABRT`, `SIGSEGV`, `SIGBUS`, `SIGILL`).
fn crashed(status: ExitStatus) -> bool {
    status.signal().is_some_and(|signal| {
        [
            Signal::SIGTRAP,
            Signal::SIGABRT,
            Signal::SIGSEGV,
            Signal::SIGBUS,
            Signal::SIGILL,
        ]
        .iter()
        .any(|crash| *crash as i32 == signal)
    })
}

/// `code 3`, `SIGTRAP`.
fn describe_status(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("code {code}"),
        (None, Some(signal)) => Signal::try_from(signal).map_or_else(
            |_| format!("signal {signal}"),
            |name| name.as_str().to_owned(),
        ),
        (None, None) => status.to_string(),
    }
}

/// Writes the prompt and closes stdin, so the program sees end of file. A program that exits
/// without reading it all makes the write fail with a broken pipe; that is its business, and
/// its exit status says how it went.
async fn write_prompt(mut stdin: ChildStdin, prompt: std::sync::Arc<str>) {
    if stdin.write_all(prompt.as_bytes()).await.is_ok() {
        let _ = stdin.shutdown().await;
    }
}

/// The outcome of a program that exited by itself.
fn exit_result(
    status: ExitStatus,
    stdout: Vec<u8>,
    stderr: &[u8],
    program: &Program,
) -> Result<String, Failure> {
    if status.success() {
        return String::from_utf8(stdout).map_err(|error| {
            Failure::permanent(format!(
                "output is not UTF-8 text (first bad byte at offset {})",
                error.utf8_error().valid_up_to()
            ))
        });
    }
    // A JSON-mode agent explains a failed request in its envelope, often with stderr empty.
    if let Some(failure) = reported_failure(program.output_format, &stdout, stderr) {
        return Err(prefixed(
            failure,
            &format!("`{}` exited with {}", program.name, describe_status(status)),
        ));
    }
    let how = match (status.code(), status.signal()) {
        (Some(code), _) => format!("`{}` exited with code {code}", program.name),
        (None, Some(_)) => format!(
            "`{}` was killed by {}",
            program.name,
            describe_status(status)
        ),
        (None, None) => format!("`{}` failed ({status})", program.name),
    };
    // Colour codes (opencode writes them to a pipe too) are not part of the message.
    let stderr = strip_ansi_escapes(stderr);
    match stderr_excerpt(&stderr).map(|excerpt| with_error_line(&stderr, excerpt)) {
        Some(excerpt) => Err(permanent_from_stderr(&how, &excerpt)
            .unwrap_or_else(|| Failure::retryable(format!("{how}: {excerpt}")))),
        None => Err(Failure::retryable(format!(
            "{how} and wrote nothing on stderr"
        ))),
    }
}

/// `bytes` without colour codes (SGR: `ESC [ digits;… m`), which some CLIs write to a pipe
/// too. Every other escape sequence is kept, for the terminal display to show neutralised: it
/// may be an attempt to act on the terminal, and the reader should see it.
fn strip_ansi_escapes(bytes: &[u8]) -> Vec<u8> {
    let mut kept = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == 0x1b && bytes.get(index + 1) == Some(&b'[') {
            let parameters = bytes[index + 2..]
                .iter()
                .take_while(|byte| byte.is_ascii_digit() || **byte == b';')
                .count();
            if bytes.get(index + 2 + parameters) == Some(&b'm') {
                index += 3 + parameters;
                continue;
            }
        }
        kept.push(bytes[index]);
        index += 1;
    }
    kept
}

/// `failure` with `lead: ` before its message.
fn prefixed(failure: Failure, lead: &str) -> Failure {
    match failure {
        Failure::Retryable { message } => Failure::retryable(format!("{lead}: {message}")),
        Failure::Permanent { message } => Failure::permanent(format!("{lead}: {message}")),
        Failure::RateLimited {
            message,
            retry_after_ms,
        } => Failure::RateLimited {
            message: format!("{lead}: {message}"),
            retry_after_ms,
        },
        other => other,
    }
}

fn over_cap_failure(over_cap: OverCap, cap: u64) -> Failure {
    Failure::permanent(format!(
        "output exceeded the {} cap ({} bytes read); raise defaults.output_cap or make the agent \
         write less",
        readable_size(cap),
        over_cap.read
    ))
}

/// Classifies a failed spawn. Most causes are configuration (trying again cannot help); running
/// out of processes or memory, or a script still being written, may pass.
fn spawn_failure(error: &io::Error, program: &Program, repo_root: &Path) -> Failure {
    let name = &program.name;
    let setting = &program.setting;
    match error.kind() {
        io::ErrorKind::NotFound if !repo_root.is_dir() => Failure::permanent(format!(
            "could not start `{name}`: its working directory `{}` does not exist",
            repo_root.display()
        )),
        io::ErrorKind::NotFound if name.contains('/') => {
            if repo_root.join(name).exists() {
                Failure::permanent(format!(
                    "program `{name}` exists but could not be started: the interpreter on its \
                     `#!` line was not found; fix that line or {setting}"
                ))
            } else {
                Failure::permanent(format!("program `{name}` does not exist; fix {setting}"))
            }
        }
        io::ErrorKind::NotFound => Failure::permanent(format!(
            "program `{name}` was not found on PATH; install it or fix {setting}"
        )),
        io::ErrorKind::PermissionDenied => Failure::permanent(format!(
            "program `{name}` could not be run (permission denied); make it executable \
             (`chmod +x`) or fix {setting}"
        )),
        _ => {
            let transient = error
                .raw_os_error()
                .map(Errno::from_raw)
                .is_some_and(|errno| {
                    matches!(
                        errno,
                        Errno::EAGAIN
                            | Errno::ENOMEM
                            | Errno::ETXTBSY
                            | Errno::EINTR
                            | Errno::EMFILE
                            | Errno::ENFILE
                    )
                });
            let message = format!("could not start `{name}`: {error}");
            if transient {
                Failure::retryable(message)
            } else {
                Failure::permanent(format!("{message}; check {setting}"))
            }
        }
    }
}

/// `excerpt` led by stderr's first `Error: …` line when the excerpt (the last lines) leaves it
/// out: Copilot CLI says what is wrong first and how to log in last.
fn with_error_line(stderr: &[u8], excerpt: String) -> String {
    let text = String::from_utf8_lossy(stderr);
    match text
        .lines()
        .map(str::trim)
        .find(|line| line.starts_with("Error: "))
    {
        Some(line) if !excerpt.contains(line) && line.chars().count() <= STDERR_EXCERPT_CHARS => {
            format!("{line} | {excerpt}")
        }
        _ => excerpt,
    }
}

/// The last non-empty lines of stderr, trimmed, joined with ` | `, at most
/// [`STDERR_EXCERPT_CHARS`] characters; `None` when stderr has nothing to say.
fn stderr_excerpt(stderr: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(stderr);
    let mut lines = text
        .lines()
        .rev()
        .map(str::trim)
        .filter(|line| !line.is_empty());
    let last = lines.next()?;
    if last.chars().count() > STDERR_EXCERPT_CHARS {
        let keep_from = last
            .char_indices()
            .rev()
            .nth(STDERR_EXCERPT_CHARS - 2)
            .map_or(0, |(index, _)| index);
        return Some(format!("…{}", &last[keep_from..]));
    }
    let mut picked = vec![last];
    let mut length = last.chars().count();
    for line in lines.take(STDERR_EXCERPT_LINES - 1) {
        length += line.chars().count() + 3;
        if length > STDERR_EXCERPT_CHARS {
            break;
        }
        picked.push(line);
    }
    picked.reverse();
    Some(picked.join(" | "))
}

/// `1 MiB`, `1.5 MiB`, `64 KiB`, `100 bytes`.
fn readable_size(bytes: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (unit, name) in UNITS {
        if bytes >= unit {
            return if bytes.is_multiple_of(unit) {
                format!("{} {name}", bytes / unit)
            } else {
                format!("{:.1} {name}", bytes as f64 / unit as f64)
            };
        }
    }
    format!("{bytes} bytes")
}

/// The name of one of spec-kit's per-integration variables: `SPECKIT_INTEGRATION_<KEY>_<SUFFIX>`,
/// the key upper-cased with `-` as `_` (`cursor-agent` → `SPECKIT_INTEGRATION_CURSOR_AGENT_…`).
pub fn speckit_variable(integration: &str, suffix: &str) -> String {
    format!(
        "SPECKIT_INTEGRATION_{}_{suffix}",
        integration.to_ascii_uppercase().replace('-', "_")
    )
}

/// Applies spec-kit's overrides for `integration` to `command` the way spec-kit does when it runs
/// the agent: `SPECKIT_INTEGRATION_<KEY>_EXECUTABLE` replaces the program and
/// `SPECKIT_INTEGRATION_<KEY>_EXTRA_ARGS` (split like a POSIX shell would, quotes grouping words)
/// goes before the output flags of `format` (see `headless_arguments`). Unset or blank variables
/// change nothing. `lookup` reads a variable, so that the environment is passed in rather than
/// read here.
pub fn apply_speckit_integration(
    mut command: Vec<String>,
    integration: &str,
    format: OutputFormat,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Vec<String>, CommandAgentError> {
    let executable = lookup(&speckit_variable(integration, "EXECUTABLE"))
        .map(|value| value.trim().to_owned())
        .filter(|value| !value.is_empty());
    if let Some(executable) = executable {
        match command.first_mut() {
            Some(program) => *program = executable,
            None => command.push(executable),
        }
    }
    let variable = speckit_variable(integration, "EXTRA_ARGS");
    if let Some(extra) = lookup(&variable).filter(|value| !value.trim().is_empty()) {
        let arguments = split_arguments(&extra)
            .map_err(|reason| CommandAgentError::ExtraArguments { variable, reason })?;
        insert_before_output_flags(&mut command, format, arguments);
    }
    Ok(command)
}

/// Splits a command line into words as a POSIX shell would, without expanding anything:
/// whitespace separates words, `'…'` is literal, `"…"` is literal except for `\"`, `\\`, `\$` and
/// `` \` ``, and a backslash outside quotes escapes the next character.
fn split_arguments(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut characters = text.chars();
    while let Some(character) = characters.next() {
        match character {
            ' ' | '\t' | '\n' | '\r' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match characters.next() {
                        Some('\'') => break,
                        Some(quoted) => word.push(quoted),
                        None => return Err("a single quote is never closed".to_owned()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match characters.next() {
                        Some('"') => break,
                        Some('\\') => match characters.next() {
                            Some(escaped @ ('"' | '\\' | '$' | '`')) => word.push(escaped),
                            Some(other) => {
                                word.push('\\');
                                word.push(other);
                            }
                            None => return Err("a double quote is never closed".to_owned()),
                        },
                        Some(quoted) => word.push(quoted),
                        None => return Err("a double quote is never closed".to_owned()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(escaped) = characters.next() {
                    word.push(escaped);
                }
            }
            other => {
                in_word = true;
                word.push(other);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::path::PathBuf;

    use nix::sys::signal::kill;
    use nix::unistd::Pid;
    use tempfile::TempDir;
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::backend::{CallIdentity, Phase};

    const GENEROUS: Duration = Duration::from_secs(30);

    fn request(repo_root: &Path, prompt: &str) -> AgentRequest {
        AgentRequest {
            identity: CallIdentity {
                run_id: "run-1".to_owned(),
                stage: "plan".to_owned(),
                phase: Phase::Synthesis,
                agent: "architect".to_owned(),
                attempt: 2,
                artifact: Some("plan.md".to_owned()),
            },
            prompt: prompt.into(),
            repo_root: repo_root.to_path_buf(),
            feature_dir: repo_root.join("specs/001-demo"),
            deadline: Instant::now() + GENEROUS,
            cancel: CancellationToken::new(),
            memory_limit_bytes: 4 << 30,
            output_cap_bytes: 1 << 20,
            materials: Default::default(),
            kill_grace: Duration::from_secs(2),
        }
    }

    /// Writes an executable `#!/bin/sh` script into `dir`.
    fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write script");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        path
    }

    fn agent(command: &[&str]) -> CommandAgent {
        let command = command.iter().map(|part| (*part).to_owned()).collect();
        CommandAgent::new(command, BTreeMap::new()).expect("a command")
    }

    fn script_agent(path: &Path) -> CommandAgent {
        agent(&[path.to_str().expect("utf-8 path")])
    }

    /// Waits (boundedly) for a pid to disappear: init may reap an orphaned zombie a little later.
    async fn assert_gone(pid: Pid) {
        let until = Instant::now() + Duration::from_secs(10);
        while kill(pid, None).is_ok() && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(
            kill(pid, None),
            Err(Errno::ESRCH),
            "process {pid} is still there"
        );
    }

    async fn read_pid(path: &Path) -> Pid {
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(text) = std::fs::read_to_string(path)
                && let Ok(pid) = text.trim().parse()
            {
                return Pid::from_raw(pid);
            }
            assert!(
                Instant::now() < until,
                "no pid written to {}",
                path.display()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[test]
    fn an_empty_command_is_rejected() {
        assert_eq!(
            CommandAgent::new(Vec::new(), BTreeMap::new()).err(),
            Some(CommandAgentError::EmptyCommand)
        );
        assert_eq!(
            CommandAgent::new(vec![String::new()], BTreeMap::new()).err(),
            Some(CommandAgentError::EmptyCommand)
        );
    }

    #[tokio::test]
    async fn the_prompt_goes_to_stdin_and_stdout_is_the_answer() {
        let dir = TempDir::new().expect("tempdir");
        let outcome = agent(&["cat"])
            .run(request(dir.path(), "hello\nagent"))
            .await;
        assert_eq!(outcome.result, Ok("hello\nagent".to_owned()));
        assert!(outcome.usage.is_none());
    }

    #[tokio::test]
    async fn the_program_sees_its_environment_and_runs_in_the_repository() {
        let dir = TempDir::new().expect("tempdir");
        let path = script(
            dir.path(),
            "env.sh",
            "printf '%s\\n' \"$STAGEGATE_RUN_ID\" \"$STAGEGATE_STAGE\" \"$STAGEGATE_PHASE\" \
             \"$STAGEGATE_AGENT\" \"$STAGEGATE_ATTEMPT\" \"$STAGEGATE_ARTIFACT\" \
             \"$STAGEGATE_FEATURE_DIR\" \"$EXTRA\" \"$(pwd -P)\"",
        );
        let env = BTreeMap::from([("EXTRA".to_owned(), "from settings".to_owned())]);
        let agent = CommandAgent::new(vec![path.display().to_string()], env).expect("command");
        let outcome = agent.run(request(dir.path(), "")).await;
        let repo = dir.path().canonicalize().expect("canonical tempdir");
        let expected = format!(
            "run-1\nplan\nsynthesis\narchitect\n2\nplan.md\n{}\nfrom settings\n{}\n",
            dir.path().join("specs/001-demo").display(),
            repo.display()
        );
        assert_eq!(outcome.result, Ok(expected));
    }

    #[tokio::test]
    async fn no_artifact_means_no_artifact_variable() {
        let dir = TempDir::new().expect("tempdir");
        let mut request = request(dir.path(), "");
        request.identity.artifact = None;
        let outcome = agent(&["/bin/sh", "-c", "printf %s \"${STAGEGATE_ARTIFACT-unset}\""])
            .run(request)
            .await;
        assert_eq!(outcome.result, Ok("unset".to_owned()));
    }

    #[tokio::test]
    async fn memory_is_capped_with_rlimit_data() {
        let dir = TempDir::new().expect("tempdir");
        let mut request = request(dir.path(), "");
        request.memory_limit_bytes = 256 << 20;
        // `ulimit -d` reports KiB.
        let outcome = agent(&["/bin/sh", "-c", "ulimit -d; ulimit -H -d"])
            .run(request)
            .await;
        assert_eq!(outcome.result, Ok("262144\n262144\n".to_owned()));
    }

    #[tokio::test]
    async fn a_non_zero_exit_is_retryable_and_quotes_stderr() {
        let dir = TempDir::new().expect("tempdir");
        let path = script(
            dir.path(),
            "fail.sh",
            "echo starting >&2; echo '  rate limit reached  ' >&2; exit 3",
        );
        let outcome = script_agent(&path).run(request(dir.path(), "")).await;
        let Err(Failure::Retryable { message }) = outcome.result else {
            panic!("expected a retryable failure, got {:?}", outcome.result);
        };
        assert!(message.contains("exited with code 3"), "{message}");
        assert!(
            message.ends_with("starting | rate limit reached"),
            "{message}"
        );
        assert_eq!(outcome.stderr, b"starting\n  rate limit reached  \n");
    }

    #[tokio::test]
    async fn a_signal_is_named() {
        let dir = TempDir::new().expect("tempdir");
        let mut request = request(dir.path(), "");
        request.memory_limit_bytes = 0;
        let outcome = agent(&["/bin/sh", "-c", "kill -SEGV $$"])
            .run(request)
            .await;
        let Err(Failure::Retryable { message }) = outcome.result else {
            panic!("expected a retryable failure, got {:?}", outcome.result);
        };
        assert!(message.contains("killed by SIGSEGV"), "{message}");
    }

    #[tokio::test]
    async fn a_crash_right_after_start_under_rlimit_data_is_permanent_and_names_the_setting() {
        let dir = TempDir::new().expect("tempdir");
        let outcome = agent(&["/bin/sh", "-c", "kill -TRAP $$"])
            .named("claude")
            .run(request(dir.path(), ""))
            .await;
        let Err(Failure::Permanent { message }) = outcome.result else {
            panic!("expected a permanent failure, got {:?}", outcome.result);
        };
        assert_eq!(
            message,
            "`/bin/sh` crashed right after it started (SIGTRAP) under the 4 GiB RLIMIT_DATA cap, \
             which counts reserved address space; raise backends.claude.memory (or \
             defaults.agent_memory)"
        );
    }

    #[test]
    fn colour_codes_are_stripped_from_stderr() {
        assert_eq!(
            strip_ansi_escapes(
                b"\x1b[0m\n> plan\n\x1b[91m\x1b[1mError: \x1b[0minvalid x-api-key\n"
            ),
            b"\n> plan\nError: invalid x-api-key\n"
        );
    }

    #[tokio::test]
    async fn a_json_agents_envelope_explains_a_failed_exit() {
        let dir = TempDir::new().expect("tempdir");
        let envelope = r#"{"type":"result","is_error":true,"api_error_status":401,"result":"Invalid API key"}"#;
        let outcome = CommandAgent::new(
            vec![
                "/bin/sh".to_owned(),
                "-c".to_owned(),
                format!("echo '{envelope}'; exit 1"),
            ],
            BTreeMap::new(),
        )
        .expect("agent")
        .with_output_format(OutputFormat::ClaudeJson)
        .supervised_by(None)
        .run(request(dir.path(), ""))
        .await;
        let Err(Failure::Permanent { message }) = outcome.result else {
            panic!("expected a permanent failure, got {:?}", outcome.result);
        };
        assert!(
            message.starts_with(
                "`/bin/sh` exited with code 1: the agent reported an error: Invalid API key; log"
            ),
            "{message}"
        );
    }

    #[tokio::test]
    async fn codex_waiting_for_network_ends_the_attempt_with_its_own_words() {
        // What `codex exec --json` prints with no network, then it waits forever (here: an
        // hour, far past what the test waits).
        let dir = TempDir::new().expect("tempdir");
        let path = script(
            dir.path(),
            "codex.sh",
            r#"cat > /dev/null
echo '{"type":"thread.started","thread_id":"t"}'
echo '{"type":"turn.started"}'
echo '{"type":"error","message":"Reconnecting... 2/5 (stream disconnected before completion)"}'
echo '{"type":"error","message":"Reconnecting... waiting for network (Connection failed: error sending request)"}'
exec sleep 3600"#,
        );
        let started = Instant::now();
        let outcome = script_agent(&path)
            .named("codex")
            .with_output_format(OutputFormat::CodexJsonl)
            .run(request(dir.path(), "hello"))
            .await;
        assert!(
            started.elapsed() < GENEROUS,
            "the attempt waited out its deadline"
        );
        let Err(Failure::Retryable { message }) = outcome.result else {
            panic!("expected a retryable failure, got {:?}", outcome.result);
        };
        assert!(
            message.contains("cannot reach its model")
                && message.contains("waiting for network (Connection failed"),
            "{message}"
        );
    }

    #[tokio::test]
    async fn a_missing_program_is_permanent() {
        let dir = TempDir::new().expect("tempdir");
        let outcome = agent(&["stagegate-no-such-agent"])
            .named("claude")
            .run(request(dir.path(), ""))
            .await;
        assert_eq!(
            outcome.result,
            Err(Failure::permanent(
                "program `stagegate-no-such-agent` was not found on PATH; install it or fix \
                 backends.claude.command"
            ))
        );
    }

    #[tokio::test]
    async fn a_program_that_is_not_executable_is_permanent() {
        let dir = TempDir::new().expect("tempdir");
        let path = dir.path().join("agent.sh");
        std::fs::write(&path, "#!/bin/sh\necho hi\n").expect("write");
        let outcome = script_agent(&path).run(request(dir.path(), "")).await;
        let Err(Failure::Permanent { message }) = outcome.result else {
            panic!("expected a permanent failure, got {:?}", outcome.result);
        };
        assert!(message.contains("permission denied"), "{message}");
    }

    #[tokio::test]
    async fn a_timeout_stops_the_program_and_its_grandchildren() {
        let dir = TempDir::new().expect("tempdir");
        let pid_file = dir.path().join("grandchild.pid");
        let path = script(
            dir.path(),
            "hang.sh",
            &format!(
                "sleep 1000 &\necho $! > '{}'\nsleep 1000",
                pid_file.display()
            ),
        );
        let mut request = request(dir.path(), "");
        request.deadline = Instant::now() + Duration::from_secs(2);
        let outcome = script_agent(&path).run(request).await;
        assert!(
            matches!(outcome.result, Err(Failure::TimedOut { after_ms }) if after_ms > 0),
            "{:?}",
            outcome.result
        );
        assert_gone(read_pid(&pid_file).await).await;
    }

    #[tokio::test]
    async fn a_program_that_ignores_sigterm_is_killed_after_the_grace() {
        let dir = TempDir::new().expect("tempdir");
        let pid_file = dir.path().join("leader.pid");
        let path = script(
            dir.path(),
            "stubborn.sh",
            &format!(
                "trap '' TERM\necho $$ > '{}'\nwhile :; do sleep 1; done",
                pid_file.display()
            ),
        );
        let mut request = request(dir.path(), "");
        request.deadline = Instant::now() + Duration::from_secs(2);
        request.kill_grace = Duration::from_millis(300);
        let outcome = script_agent(&path).run(request).await;
        assert!(
            matches!(outcome.result, Err(Failure::TimedOut { .. })),
            "{:?}",
            outcome.result
        );
        assert_gone(read_pid(&pid_file).await).await;
    }

    #[tokio::test]
    async fn output_over_the_cap_is_permanent_and_stops_the_program() {
        let dir = TempDir::new().expect("tempdir");
        let pid_file = dir.path().join("leader.pid");
        let path = script(
            dir.path(),
            "chatty.sh",
            &format!("echo $$ > '{}'\nexec yes", pid_file.display()),
        );
        let mut request = request(dir.path(), "");
        request.output_cap_bytes = 1000;
        let outcome = script_agent(&path).run(request).await;
        let Err(Failure::Permanent { message }) = outcome.result else {
            panic!("expected a permanent failure, got {:?}", outcome.result);
        };
        assert!(
            message.starts_with("output exceeded the 1000 bytes cap ("),
            "{message}"
        );
        assert!(message.ends_with("raise defaults.output_cap or make the agent write less"));
        assert_gone(read_pid(&pid_file).await).await;
    }

    #[tokio::test]
    async fn output_just_under_the_cap_is_accepted() {
        let dir = TempDir::new().expect("tempdir");
        let mut request = request(dir.path(), "");
        request.output_cap_bytes = 1000;
        let outcome = agent(&["/bin/sh", "-c", "yes | head -c 1000"])
            .run(request)
            .await;
        assert_eq!(outcome.result.map(|text| text.len()), Ok(1000));
    }

    #[tokio::test]
    async fn output_that_is_not_utf8_is_permanent() {
        let dir = TempDir::new().expect("tempdir");
        let outcome = agent(&["printf", "abc\\377def"])
            .run(request(dir.path(), ""))
            .await;
        assert_eq!(
            outcome.result,
            Err(Failure::permanent(
                "output is not UTF-8 text (first bad byte at offset 3)"
            ))
        );
    }

    #[tokio::test]
    async fn cancellation_stops_the_program() {
        let dir = TempDir::new().expect("tempdir");
        let pid_file = dir.path().join("leader.pid");
        let path = script(
            dir.path(),
            "wait.sh",
            &format!("echo $$ > '{}'\nexec sleep 1000", pid_file.display()),
        );
        let request = request(dir.path(), "");
        let cancel = request.cancel.clone();
        let attempt = tokio::spawn(script_agent(&path).run(request));
        let pid = read_pid(&pid_file).await;
        cancel.cancel();
        let outcome = attempt.await.expect("attempt task");
        assert_eq!(outcome.result, Err(Failure::Cancelled));
        assert_gone(pid).await;
    }

    #[tokio::test]
    async fn an_already_cancelled_attempt_starts_nothing() {
        let dir = TempDir::new().expect("tempdir");
        let marker = dir.path().join("ran");
        let request = request(dir.path(), "");
        request.cancel.cancel();
        let outcome = agent(&["touch", marker.to_str().expect("utf-8")])
            .run(request)
            .await;
        assert_eq!(outcome.result, Err(Failure::Cancelled));
        assert!(!marker.exists());
    }

    #[tokio::test]
    async fn lots_of_stderr_before_reading_stdin_does_not_deadlock() {
        let dir = TempDir::new().expect("tempdir");
        // 1 MB on stderr and stdout before the prompt (also large) is read.
        let path = script(
            dir.path(),
            "loud.sh",
            "head -c 1000000 /dev/zero >&2\nhead -c 500000 /dev/zero | tr '\\0' x\ncat",
        );
        let prompt = "p".repeat(400_000);
        let outcome = script_agent(&path).run(request(dir.path(), &prompt)).await;
        let text = outcome.result.expect("success");
        assert_eq!(text.len(), 900_000);
        assert_eq!(outcome.stderr.len(), STDERR_TAIL_BYTES);
    }

    #[tokio::test]
    async fn a_grandchild_left_behind_after_exit_is_stopped() {
        let dir = TempDir::new().expect("tempdir");
        let pid_file = dir.path().join("grandchild.pid");
        let path = script(
            dir.path(),
            "leaky.sh",
            &format!(
                "sleep 1000 &\necho $! > '{}'\necho done",
                pid_file.display()
            ),
        );
        let outcome = script_agent(&path).run(request(dir.path(), "")).await;
        assert_eq!(outcome.result, Ok("done\n".to_owned()));
        assert_gone(read_pid(&pid_file).await).await;
    }

    #[tokio::test]
    async fn dropping_the_attempt_kills_the_group() {
        let dir = TempDir::new().expect("tempdir");
        let pid_file = dir.path().join("grandchild.pid");
        let path = script(
            dir.path(),
            "hang.sh",
            &format!(
                "sleep 1000 &\necho $! > '{}'\nsleep 1000",
                pid_file.display()
            ),
        );
        let attempt = tokio::spawn(script_agent(&path).run(request(dir.path(), "")));
        let grandchild = read_pid(&pid_file).await;
        attempt.abort();
        assert!(attempt.await.is_err_and(|error| error.is_cancelled()));
        assert_gone(grandchild).await;
    }

    #[tokio::test]
    async fn a_claude_json_envelope_gives_the_answer_and_the_usage() {
        let dir = TempDir::new().expect("tempdir");
        let path = script(
            dir.path(),
            "claude.sh",
            r#"cat > /dev/null
printf '%s' '{"type":"result","subtype":"success","is_error":false,"result":"the answer","usage":{"input_tokens":12,"output_tokens":34},"total_cost_usd":0.01}'"#,
        );
        let outcome = script_agent(&path)
            .with_output_format(OutputFormat::ClaudeJson)
            .run(request(dir.path(), "prompt"))
            .await;
        assert_eq!(outcome.result, Ok("the answer".to_owned()));
        assert_eq!(
            outcome.usage,
            Some(crate::backend::Usage {
                input_tokens: 12,
                output_tokens: 34,
                cost_usd: Some(0.01),
            })
        );
    }

    #[tokio::test]
    async fn text_where_json_was_expected_is_retryable() {
        let dir = TempDir::new().expect("tempdir");
        let outcome = agent(&["echo", "Error: not logged in"])
            .with_output_format(OutputFormat::GeminiJson)
            .run(request(dir.path(), ""))
            .await;
        assert_eq!(
            outcome.result,
            Err(Failure::retryable(
                "the output was not the expected gemini-json JSON (not valid JSON); it began: \
                 Error: not logged in"
            ))
        );
    }

    #[test]
    fn the_output_format_is_part_of_the_fingerprint_unless_text() {
        let text = agent(&["claude", "-p"]);
        assert_eq!(text.fingerprint(), "command:claude\0-p");
        let json = agent(&["claude", "-p"]).with_output_format(OutputFormat::ClaudeJson);
        assert_eq!(
            json.fingerprint(),
            "command:claude\0-p\0output_format=claude-json"
        );
    }

    fn environment(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    fn words(parts: &[&str]) -> Vec<String> {
        parts.iter().map(|part| (*part).to_owned()).collect()
    }

    #[test]
    fn speckit_variables_are_named_after_the_integration_key() {
        assert_eq!(
            speckit_variable("cursor-agent", "EXECUTABLE"),
            "SPECKIT_INTEGRATION_CURSOR_AGENT_EXECUTABLE"
        );
        assert_eq!(
            speckit_variable("claude", "EXTRA_ARGS"),
            "SPECKIT_INTEGRATION_CLAUDE_EXTRA_ARGS"
        );
    }

    #[test]
    fn speckit_executable_replaces_the_program_and_extra_args_go_before_the_output_flags() {
        let command = words(&["cursor-agent", "-p", "--output-format", "json"]);
        let lookup = environment(&[
            (
                "SPECKIT_INTEGRATION_CURSOR_AGENT_EXECUTABLE",
                " /opt/cursor/bin/cursor-agent ",
            ),
            (
                "SPECKIT_INTEGRATION_CURSOR_AGENT_EXTRA_ARGS",
                "--model  sonnet-4 --append 'two words' \"a \\\"b\\\"\" c\\ d",
            ),
            // Another integration's variables do nothing here.
            ("SPECKIT_INTEGRATION_CLAUDE_EXECUTABLE", "/usr/bin/false"),
        ]);
        assert_eq!(
            apply_speckit_integration(command, "cursor-agent", OutputFormat::ClaudeJson, lookup),
            Ok(words(&[
                "/opt/cursor/bin/cursor-agent",
                "-p",
                "--model",
                "sonnet-4",
                "--append",
                "two words",
                "a \"b\"",
                "c d",
                "--output-format",
                "json",
            ]))
        );
    }

    #[test]
    fn unset_or_blank_speckit_variables_change_nothing() {
        let command = words(&["claude", "-p"]);
        assert_eq!(
            apply_speckit_integration(
                command.clone(),
                "claude",
                OutputFormat::Text,
                environment(&[])
            ),
            Ok(command.clone())
        );
        let blank = environment(&[
            ("SPECKIT_INTEGRATION_CLAUDE_EXECUTABLE", "  "),
            ("SPECKIT_INTEGRATION_CLAUDE_EXTRA_ARGS", " \t"),
        ]);
        assert_eq!(
            apply_speckit_integration(command.clone(), "claude", OutputFormat::Text, blank),
            Ok(command)
        );
    }

    #[test]
    fn an_unclosed_quote_in_extra_args_is_an_error_naming_the_variable() {
        let lookup = environment(&[("SPECKIT_INTEGRATION_CODEX_EXTRA_ARGS", "--flag 'open")]);
        let error = apply_speckit_integration(
            words(&["codex", "exec", "-"]),
            "codex",
            OutputFormat::Text,
            lookup,
        )
        .expect_err("an unclosed quote");
        assert_eq!(
            error,
            CommandAgentError::ExtraArguments {
                variable: "SPECKIT_INTEGRATION_CODEX_EXTRA_ARGS".to_owned(),
                reason: "a single quote is never closed".to_owned(),
            }
        );
        assert!(
            error
                .to_string()
                .starts_with("SPECKIT_INTEGRATION_CODEX_EXTRA_ARGS has an unclosed quote")
        );
    }

    #[test]
    fn arguments_split_like_a_shell_without_expansion() {
        assert_eq!(split_arguments(""), Ok(Vec::new()));
        assert_eq!(split_arguments("  a  b "), Ok(words(&["a", "b"])));
        assert_eq!(split_arguments("''"), Ok(words(&[""])));
        assert_eq!(
            split_arguments("'$HOME' \"x\\n\""),
            Ok(words(&["$HOME", "x\\n"]))
        );
        assert_eq!(split_arguments("a'b'\"c\""), Ok(words(&["abc"])));
        assert!(split_arguments("\"open").is_err());
    }

    #[test]
    fn copilots_first_error_line_leads_the_excerpt_and_classifies_it() {
        let stderr = b"Error: No authentication information found.\n\nCopilot can be authenticated.\n\nTo authenticate:\n  * Start 'copilot' and run the '/login' command\n  * Set the COPILOT_GITHUB_TOKEN variable\n  * Run 'gh auth login'\n";
        let excerpt = with_error_line(stderr, stderr_excerpt(stderr).expect("an excerpt"));
        assert!(
            excerpt.starts_with("Error: No authentication information found. | "),
            "{excerpt}"
        );
        assert!(matches!(
            permanent_from_stderr("`copilot` exited with code 1", &excerpt),
            Some(Failure::Permanent { .. })
        ));
        let offline = b"Error: Authentication token found but could not be validated.\n  * run the '/login' command\n";
        let excerpt = with_error_line(offline, stderr_excerpt(offline).expect("an excerpt"));
        assert_eq!(
            permanent_from_stderr("`copilot` exited with code 1", &excerpt),
            None,
            "a token that could not be checked offline may pass"
        );
    }

    #[test]
    fn the_stderr_excerpt_is_short() {
        assert_eq!(stderr_excerpt(b"\n  \n"), None);
        assert_eq!(
            stderr_excerpt(b"a\nb\nc\nd\n"),
            Some("b | c | d".to_owned())
        );
        let long = "x".repeat(1000);
        let excerpt = stderr_excerpt(long.as_bytes()).expect("an excerpt");
        assert_eq!(excerpt.chars().count(), STDERR_EXCERPT_CHARS);
        assert!(excerpt.starts_with('…'));
    }

    #[test]
    fn sizes_are_readable() {
        assert_eq!(readable_size(1 << 20), "1 MiB");
        assert_eq!(readable_size(3 << 19), "1.5 MiB");
        assert_eq!(readable_size(64 << 10), "64 KiB");
        assert_eq!(readable_size(100), "100 bytes");
    }
}
