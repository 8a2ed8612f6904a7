//! The agent supervisor: a small process between stagegate and a program agent that makes the
//! agent's whole tree die with the attempt, and with stagegate, whatever kills stagegate.
//!
//! # Design note: why a supervisor
//!
//! `PR_SET_PDEATHSIG` reaches only the process it is set on, and a process group only the
//! processes that stay in it. When stagegate is killed with `kill -9`, nothing of stagegate runs
//! any more, so whatever the agent started (a shell script's `sleep`s, an MCP server that called
//! `setsid`) would run on under init. Something must outlive stagegate just long enough to clean
//! up, and must be able to find the whole tree. That is this supervisor, one per attempt, run by
//! re-executing the stagegate binary in a hidden mode (the engine only knows the command to run,
//! see [`SupervisorCommand`]):
//!
//! - it makes itself a *child subreaper* (`PR_SET_CHILD_SUBREAPER`), so every orphan of the tree
//!   (including processes that called `setsid`) is re-parented to it rather than to init, and the
//!   tree is exactly "the supervisor's descendants" (found by walking `/proc/*/stat`);
//! - it asks for `KILL_TREE_SIGNAL` (not `SIGKILL`) as its parent-death signal and also polls
//!   `getppid()`; either way, when stagegate is gone it `SIGKILL`s every descendant, again and
//!   again until none is left, and exits. The engine sends the same signal when an attempt is
//!   dropped;
//! - `SIGTERM` (the engine's timeout and Ctrl-C path signals the process group, which the
//!   supervisor leads) is forwarded to the descendants that left the group, and `SIGKILL` follows
//!   for all of them after the grace the engine passed, so a descendant in another session is
//!   stopped like one in the group. The engine waits a little longer than that grace before its
//!   own `SIGKILL` to the group, which would kill the supervisor before it could clean up;
//! - when the agent exits, what it left behind gets `SIGTERM`, the grace, then `SIGKILL`, and the
//!   supervisor exits with the agent's status (a signal is raised again), so that the engine sees
//!   what it would have seen without the supervisor.
//!
//! Signals are taken through a `signalfd` with the signals blocked, so the supervisor is one
//! single-threaded loop with no signal handlers. The mask would be inherited by the agent, so it
//! is cleared between fork and exec (the one `unsafe` here, like `confine_child`'s). The supervisor's stdin and stdout are pointed at `/dev/null` once
//! the agent has its own copies, so that end of file and broken pipes are the agent's alone.
//!
//! - with `--memory-bytes N`, it samples what the tree really uses (see `memory_usage`: anonymous
//!   and shared memory, not reserved address space) every `MEMORY_POLL`; when the sum passes N
//!   it says so on stderr (`MEMORY_EXCEEDED_PREFIX`), kills the tree and exits with
//!   `MEMORY_EXCEEDED_EXIT`, which the engine turns into a permanent "exceeded agent_memory"
//!   failure. This replaces `RLIMIT_DATA` for supervised agents: the rlimit counts reservations
//!   (Bun and V8 make huge ones and die at start under it) but not shared mappings.
//!
//! What it cannot do: catch a descendant that escapes the tree on purpose (a double fork through
//! a process that is not in the tree is impossible, but `ptrace` or a daemon manager asked over a
//! socket, like `systemd-run`, is not), and stop a burst of allocation between two samples
//! (a hard cap needs a cgroup's `memory.max`, which is not writable where stagegate usually
//! runs).

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::io;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, Signal, kill};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

/// Sent to the supervisor to have the whole tree killed at once: its parent-death signal, and
/// what the engine sends when an attempt is dropped.
pub(crate) const KILL_TREE_SIGNAL: Signal = Signal::SIGUSR1;

/// The supervisor's exit code when the agent could not be started; its last stderr line then is
/// [`SPAWN_FAILED_PREFIX`] followed by the error number, which the engine turns back into the
/// error (127 is what shells use for a command that cannot be run).
pub(crate) const SPAWN_FAILED_EXIT: u8 = 127;

/// See [`SPAWN_FAILED_EXIT`].
pub(crate) const SPAWN_FAILED_PREFIX: &str =
    "stagegate supervisor: could not start the agent: os error ";

/// The supervisor's exit code when the tree used more memory than `--memory-bytes`; its last
/// stderr line then is [`MEMORY_EXCEEDED_PREFIX`] followed by `USED CAP` in bytes.
pub(crate) const MEMORY_EXCEEDED_EXIT: u8 = 125;

/// See [`MEMORY_EXCEEDED_EXIT`].
pub(crate) const MEMORY_EXCEEDED_PREFIX: &str = "stagegate supervisor: memory cap exceeded: ";

/// How often the tree's memory is measured when it is capped.
const MEMORY_POLL: Duration = Duration::from_millis(100);

/// How long the engine waits, past the grace it gave the supervisor, before it kills the
/// supervisor's group itself: time for the supervisor's own `SIGKILL` round and its exit.
pub(crate) const SUPERVISOR_SLACK: Duration = Duration::from_secs(2);

/// How often the supervisor wakes up with nothing to do (to notice that stagegate is gone, in
/// case the parent-death signal did not come).
const IDLE_POLL: Duration = Duration::from_millis(100);

/// How often descendants are killed again while some remain.
const KILL_POLL: Duration = Duration::from_millis(10);

/// How long the supervisor keeps killing after stagegate is gone before it gives up on processes
/// stuck in the kernel.
const ORPHANED_KILL_LIMIT: Duration = Duration::from_secs(10);

/// How to start a supervisor: a program (the stagegate binary) and the arguments that select
/// its supervisor mode. The engine appends `--parent PID --grace-ms N [--memory-bytes N] --
/// PROGRAM ARGS...`, which [`supervise`] reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupervisorCommand {
    pub program: PathBuf,
    pub args: Vec<OsString>,
}

static INSTALLED: OnceLock<SupervisorCommand> = OnceLock::new();

/// Runs every `command` agent built from now on under `command` (see the module's design note).
/// Without it agents are spawned directly, which library users and tests get. Only the first
/// call counts; returns whether this one did.
pub fn install_supervisor(command: SupervisorCommand) -> bool {
    INSTALLED.set(command).is_ok()
}

/// The supervisor installed with [`install_supervisor`], if any.
pub(crate) fn installed_supervisor() -> Option<SupervisorCommand> {
    INSTALLED.get().cloned()
}

/// What the supervisor was asked to do.
#[derive(Debug)]
struct Invocation {
    parent: Pid,
    grace: Duration,
    /// The tree's memory cap in bytes; 0 for none.
    memory_bytes: u64,
    program: OsString,
    args: Vec<OsString>,
}

impl Invocation {
    fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Self, String> {
        let mut args = args.into_iter();
        let mut parent = None;
        let mut grace = None;
        let mut memory_bytes = 0;
        loop {
            let Some(flag) = args.next() else {
                return Err("missing `-- PROGRAM`".to_owned());
            };
            let number = |value: Option<OsString>| {
                value
                    .and_then(|value| value.into_string().ok())
                    .and_then(|value| value.parse::<u64>().ok())
                    .ok_or_else(|| format!("{} needs a number", flag.to_string_lossy()))
            };
            match flag.to_str() {
                Some("--parent") => {
                    let pid = i32::try_from(number(args.next())?).map_err(|e| e.to_string())?;
                    parent = Some(Pid::from_raw(pid));
                }
                Some("--grace-ms") => grace = Some(Duration::from_millis(number(args.next())?)),
                Some("--memory-bytes") => memory_bytes = number(args.next())?,
                Some("--") => break,
                _ => return Err(format!("unknown argument {}", flag.to_string_lossy())),
            }
        }
        let program = args.next().ok_or("missing the program after `--`")?;
        Ok(Invocation {
            parent: parent.ok_or("missing --parent")?,
            grace: grace.ok_or("missing --grace-ms")?,
            memory_bytes,
            program,
            args: args.collect(),
        })
    }
}

/// The supervisor's `main`: `args` are the arguments after the ones that selected the mode.
/// Must be called before any other thread is started (the signal mask is the thread's).
pub fn supervise(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let invocation = match Invocation::parse(args) {
        Ok(invocation) => invocation,
        Err(message) => {
            eprintln!("stagegate supervisor: {message} (this mode is for stagegate's own use)");
            return ExitCode::from(2);
        }
    };
    match run(&invocation) {
        Ok(status) => exit_like(status),
        Err(error) => {
            eprintln!("stagegate supervisor: {error}");
            ExitCode::from(1)
        }
    }
}

/// How the agent ended.
#[derive(Debug, Clone, Copy)]
enum AgentEnd {
    Exited(i32),
    Signaled(Signal),
}

fn run(invocation: &Invocation) -> io::Result<AgentEnd> {
    let mut signals = SigSet::empty();
    for signal in [
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGCHLD,
        KILL_TREE_SIGNAL,
    ] {
        signals.add(signal);
    }
    signals.thread_block()?;
    let signal_fd = SignalFd::with_flags(&signals, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)?;
    nix::sys::prctl::set_pdeathsig(KILL_TREE_SIGNAL)?;
    if nix::unistd::getppid() != invocation.parent {
        // stagegate died before the parent-death signal was armed; nothing is started yet.
        return Ok(AgentEnd::Signaled(Signal::SIGKILL));
    }
    nix::sys::prctl::set_child_subreaper(true)?;

    let mut command = std::process::Command::new(&invocation.program);
    command.args(&invocation.args);
    unblock_in_child(&mut command, signals);
    let agent = match command.spawn() {
        Ok(child) => Pid::from_raw(child.id().cast_signed()),
        Err(error) => {
            if let Some(errno) = error.raw_os_error() {
                eprintln!("{SPAWN_FAILED_PREFIX}{errno}");
                std::process::exit(i32::from(SPAWN_FAILED_EXIT));
            }
            return Err(error);
        }
    };
    // The agent has its own copies; ours must not keep its stdin readable or its stdout open.
    let null = std::fs::File::open("/dev/null")?;
    nix::unistd::dup2_stdin(&null)?;
    nix::unistd::dup2_stdout(&null)?;
    drop(null);

    let own_group = nix::unistd::getpgrp();
    let mut supervisor = Supervisor {
        agent,
        agent_end: None,
        kill_at: None,
    };
    loop {
        supervisor.reap();
        if nix::unistd::getppid() != invocation.parent {
            kill_tree_until_empty();
            return Ok(AgentEnd::Signaled(Signal::SIGKILL));
        }
        let now = Instant::now();
        if let Some(end) = supervisor.agent_end {
            let tree = descendants();
            if tree.is_empty() {
                return Ok(end);
            }
            if supervisor.kill_at.is_none() {
                // The agent left these behind: the engine's protocol, SIGTERM then the grace.
                signal_all(&tree, Signal::SIGTERM);
                supervisor.kill_at = Some(now + invocation.grace);
            }
        }
        let mut timeout = IDLE_POLL;
        if invocation.memory_bytes != 0 && supervisor.agent_end.is_none() {
            let used = tree_memory(&descendants());
            if used > invocation.memory_bytes {
                kill_tree_until_empty();
                eprintln!("{MEMORY_EXCEEDED_PREFIX}{used} {}", invocation.memory_bytes);
                std::process::exit(i32::from(MEMORY_EXCEEDED_EXIT));
            }
            timeout = timeout.min(MEMORY_POLL);
        }
        if let Some(kill_at) = supervisor.kill_at {
            if now >= kill_at {
                signal_all(&descendants(), Signal::SIGKILL);
                timeout = KILL_POLL;
            } else {
                timeout = timeout.min(kill_at - now);
            }
        }
        wait_for_signal(&signal_fd, timeout)?;
        while let Some(info) = signal_fd.read_signal()? {
            match Signal::try_from(info.ssi_signo.cast_signed()) {
                Ok(KILL_TREE_SIGNAL) => {
                    kill_tree_until_empty();
                    return Ok(AgentEnd::Signaled(Signal::SIGKILL));
                }
                Ok(Signal::SIGTERM | Signal::SIGINT | Signal::SIGHUP)
                    if supervisor.kill_at.is_none() =>
                {
                    // The engine signalled our group; those outside it are ours to tell.
                    let outside: BTreeSet<Pid> = descendants()
                        .into_iter()
                        .filter(|pid| nix::unistd::getpgid(Some(*pid)).ok() != Some(own_group))
                        .collect();
                    signal_all(&outside, Signal::SIGTERM);
                    supervisor.kill_at = Some(Instant::now() + invocation.grace);
                }
                _ => {}
            }
        }
    }
}

struct Supervisor {
    agent: Pid,
    agent_end: Option<AgentEnd>,
    /// When every descendant gets `SIGKILL` (the grace after `SIGTERM` is over).
    kill_at: Option<Instant>,
}

impl Supervisor {
    /// Reaps every child that has ended: the agent, and orphans the subreaper adopted.
    fn reap(&mut self) {
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) if pid == self.agent => {
                    self.agent_end = Some(AgentEnd::Exited(code));
                }
                Ok(WaitStatus::Signaled(pid, signal, _)) if pid == self.agent => {
                    self.agent_end = Some(AgentEnd::Signaled(signal));
                }
                Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return,
                Ok(_) | Err(Errno::EINTR) => {}
                Err(_) => return,
            }
        }
    }
}

/// Unblocks `signals` in the agent between fork and exec: a blocked mask is inherited across
/// `exec` (`std::process::Command` leaves it alone), and an agent with `SIGTERM` blocked could not
/// be stopped politely.
#[expect(
    unsafe_code,
    reason = "`pre_exec` is unsafe because the closure runs between fork and exec; it only calls \
              pthread_sigmask, which is async-signal-safe, on a set built before the fork, and \
              allocates nothing"
)]
fn unblock_in_child(command: &mut std::process::Command, signals: SigSet) {
    use std::os::unix::process::CommandExt;
    // SAFETY: see the `expect` reason.
    unsafe {
        command.pre_exec(move || {
            signals.thread_unblock()?;
            Ok(())
        });
    }
}

/// Waits until a signal is pending or `timeout` passes.
fn wait_for_signal(signal_fd: &SignalFd, timeout: Duration) -> io::Result<()> {
    let timeout = PollTimeout::try_from(timeout).unwrap_or(PollTimeout::MAX);
    let mut fds = [PollFd::new(
        std::os::fd::AsFd::as_fd(signal_fd),
        PollFlags::POLLIN,
    )];
    match poll(&mut fds, timeout) {
        Ok(_) | Err(Errno::EINTR) => Ok(()),
        Err(error) => Err(error.into()),
    }
}

/// `SIGKILL` to every descendant, again and again until none is left (each one killed hands its
/// children to us) or [`ORPHANED_KILL_LIMIT`] passes.
fn kill_tree_until_empty() {
    let give_up = Instant::now() + ORPHANED_KILL_LIMIT;
    loop {
        let tree = descendants();
        if tree.is_empty() || Instant::now() >= give_up {
            return;
        }
        signal_all(&tree, Signal::SIGKILL);
        std::thread::sleep(KILL_POLL);
        reap_all();
    }
}

fn reap_all() {
    while let Ok(status) = waitpid(None, Some(WaitPidFlag::WNOHANG)) {
        if status == WaitStatus::StillAlive {
            return;
        }
    }
}

fn signal_all(pids: &BTreeSet<Pid>, signal: Signal) {
    for pid in pids {
        // `ESRCH`: it ended meanwhile, which is what we want.
        let _ = kill(*pid, signal);
    }
}

/// Every live (not zombie) process below this one, from `/proc`: children first found by their
/// parent id, then theirs, and so on.
fn descendants() -> BTreeSet<Pid> {
    let mut children: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return BTreeSet::new();
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        if let Some((state, parent)) = state_and_parent(&stat)
            && state != 'Z'
            && state != 'X'
        {
            children.entry(parent).or_default().push(pid);
        }
    }
    let mut found = BTreeSet::new();
    let mut pending = vec![std::process::id().cast_signed()];
    while let Some(parent) = pending.pop() {
        for &child in children.get(&parent).into_iter().flatten() {
            if found.insert(Pid::from_raw(child)) {
                pending.push(child);
            }
        }
    }
    found
}

/// What the processes `tree` use together (see `memory_usage`).
fn tree_memory(tree: &BTreeSet<Pid>) -> u64 {
    tree.iter()
        .filter_map(|pid| crate::memory_usage::used_bytes(pid.as_raw()))
        .sum()
}

/// The state and the parent's pid from `/proc/PID/stat`: `PID (COMMAND) STATE PPID …`, where the
/// command may hold spaces and parentheses, so the fields are read after the last `)`.
fn state_and_parent(stat: &str) -> Option<(char, i32)> {
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let parent = fields.next()?.parse().ok()?;
    Some((state, parent))
}

/// Ends the supervisor the way the agent ended: the same exit code, or the same signal raised
/// again (without a core dump). A signal whose default is not to terminate ends in `128 + N`.
fn exit_like(end: AgentEnd) -> ExitCode {
    match end {
        AgentEnd::Exited(code) => ExitCode::from(u8::try_from(code & 0xff).unwrap_or(1)),
        AgentEnd::Signaled(signal) => {
            let _ = nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_CORE, 0, 0);
            let mut only = SigSet::empty();
            only.add(signal);
            if nix::sys::signal::raise(signal).is_ok() {
                // Blocked signals stay pending until unblocked; then the default action runs.
                let _ = only.thread_unblock();
            }
            ExitCode::from(128u8.saturating_add(u8::try_from(signal as i32).unwrap_or(0)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<OsString> {
        text.split_whitespace().map(OsString::from).collect()
    }

    #[test]
    fn the_invocation_is_parsed() {
        let invocation = Invocation::parse(words("--parent 42 --grace-ms 500 -- prog -a --parent"))
            .expect("a valid invocation");
        assert_eq!(invocation.parent, Pid::from_raw(42));
        assert_eq!(invocation.grace, Duration::from_millis(500));
        assert_eq!(invocation.program, "prog");
        assert_eq!(invocation.args, words("-a --parent"));
        assert_eq!(invocation.memory_bytes, 0);
        let capped = Invocation::parse(words("--parent 1 --grace-ms 5 --memory-bytes 1024 -- p"))
            .expect("a valid invocation");
        assert_eq!(capped.memory_bytes, 1024);
        assert!(Invocation::parse(words("--parent 42 --grace-ms 500")).is_err());
        assert!(Invocation::parse(words("--parent x --grace-ms 500 -- p")).is_err());
        assert!(Invocation::parse(words("--grace-ms 500 -- p")).is_err());
    }

    #[test]
    fn stat_lines_with_odd_command_names_are_read() {
        assert_eq!(
            state_and_parent("12 (a) b (c)) S 7 12 12 0"),
            Some(('S', 7))
        );
        assert_eq!(state_and_parent("12 (sh) Z 1 12"), Some(('Z', 1)));
        assert_eq!(state_and_parent("garbage"), None);
    }
}
