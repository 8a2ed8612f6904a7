//! Stopping a program agent and everything it started.
//!
//! # Design note: termination
//!
//! An agent CLI is rarely one process: `claude` is Node, which starts helpers, MCP servers and
//! shells, and those start their own children. Killing only the process we spawned leaves the rest
//! running (holding our pipes open, burning tokens, writing into the repository). So each program
//! agent is spawned as the leader of a new process group (`process_group(0)`), and it is always the
//! *group* that is signalled, the way cargo-nextest stops a test:
//!
//! 1. `SIGTERM` to the group, so well-behaved programs can flush and clean up;
//! 2. up to `grace` for the group to empty (the leader is reaped as soon as it exits);
//! 3. `SIGKILL` to the group;
//! 4. a bounded check that nothing is left: `killpg(pgid, 0)` until it answers `ESRCH`, sending
//!    `SIGKILL` again meanwhile, for members forked while the first one was being delivered.
//!
//! Step 4 depends on reaping. A zombie still belongs to its group, so `ESRCH` only comes back once
//! the leader has been waited for; that is why the functions here take the `Child` and wait on
//! it. Grandchildren need nothing from us: when they die their parent (or, once orphaned, init)
//! reaps them.
//!
//! Process ids are reused, so a group id is only signalled while it provably still names our
//! group: while the leader is unreaped (its zombie holds the id) or while the group still has
//! members (the kernel does not hand out an id still in use as a group id). Once `ESRCH` has been
//! seen the group is never signalled again; [`ProcessGroupGuard::disarm`] records that.
//!
//! What the group cannot catch: a descendant that leaves it on purpose (`setsid`, `setpgid`), and
//! anything at all once stagegate itself is killed. The stagegate binary therefore runs each agent
//! under a supervisor (see `supervisor`), which leads the group and takes care of both; the
//! protocol here stays the same, with a longer grace so that the supervisor's own escalation
//! finishes first. Without a supervisor (library users, the engine's tests) agents are spawned
//! directly and only the group is stopped.
//!
//! When the future running an attempt is dropped (the stage was aborted), nothing async can run,
//! so [`ProcessGroupGuard`] sends `SIGKILL` to the group from `Drop`, and tokio's `kill_on_drop`
//! plus its orphan queue reap the leader later.

use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use tokio::process::Child;
use tokio::time::Instant;

use crate::supervisor::KILL_TREE_SIGNAL;

/// How often the group is checked while waiting for it to empty.
const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// How long to wait for the group to empty after `SIGKILL`. Dying after `SIGKILL` is normally
/// immediate; a process stuck in uninterruptible sleep (a hung NFS read) can take longer, and the
/// attempt should not hang on it forever.
const KILL_WAIT: Duration = Duration::from_secs(5);

/// How often `SIGKILL` is sent again while members remain.
const KILL_REPEAT: Duration = Duration::from_millis(100);

/// How a group ended after [`terminate_group`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GroupEnd {
    /// Nothing was left by the time `SIGTERM` was due.
    AlreadyGone,
    /// The group emptied within the grace after `SIGTERM`.
    Terminated,
    /// The group had to be killed with `SIGKILL`, and then emptied.
    Killed,
    /// Members were still there after `SIGKILL` and the bounded wait: they are stuck in the kernel
    /// or outlived us some other way. Reported, not waited for.
    Lingering,
}

/// Stops the process group led by `leader`: `SIGTERM`, up to `grace` for the group to empty, then
/// `SIGKILL` and a bounded check that nothing is left. See the module's design note.
///
/// `leader` may already have exited (and been reaped); then only what is left of its group is
/// stopped. Disarms `guard` once the group is confirmed empty.
pub(crate) async fn terminate_group(
    leader: &mut Child,
    guard: &mut ProcessGroupGuard,
    grace: Duration,
) -> GroupEnd {
    let pgid = guard.pgid;
    if group_is_gone(leader, pgid) {
        guard.disarm();
        return GroupEnd::AlreadyGone;
    }
    if signal_group(pgid, Signal::SIGTERM).is_err() && group_is_gone(leader, pgid) {
        guard.disarm();
        return GroupEnd::AlreadyGone;
    }

    let grace_end = Instant::now() + grace;
    while Instant::now() < grace_end {
        wait_a_little(leader, grace_end).await;
        if group_is_gone(leader, pgid) {
            guard.disarm();
            return GroupEnd::Terminated;
        }
    }

    let kill_end = Instant::now() + KILL_WAIT;
    loop {
        // Ignoring the result: `ESRCH` here means the group emptied meanwhile, which the check
        // below sees; nothing else can fail for a group we own.
        let _ = signal_group(pgid, Signal::SIGKILL);
        let next_kill = (Instant::now() + KILL_REPEAT).min(kill_end);
        while Instant::now() < next_kill {
            wait_a_little(leader, next_kill).await;
            if group_is_gone(leader, pgid) {
                guard.disarm();
                return GroupEnd::Killed;
            }
        }
        if Instant::now() >= kill_end {
            return GroupEnd::Lingering;
        }
    }
}

/// Sends `SIGKILL` to the group when dropped, unless disarmed: an attempt whose future is dropped
/// (the stage was aborted) must not leave its agent running. A supervised group (led by the
/// agent supervisor, see `supervisor`) has its leader asked instead, which kills the whole tree,
/// including what left the group; `SIGKILL` would kill the supervisor before it could.
#[derive(Debug)]
pub(crate) struct ProcessGroupGuard {
    pgid: Pid,
    armed: bool,
    supervised: bool,
}

impl ProcessGroupGuard {
    /// Guards the group led by the process `leader_pid` (spawned with `process_group(0)`, so the
    /// group id is the leader's pid). Create it right after spawning, while the leader is unreaped.
    pub(crate) fn new(leader_pid: u32) -> Self {
        ProcessGroupGuard {
            pgid: Pid::from_raw(leader_pid.cast_signed()),
            armed: true,
            supervised: false,
        }
    }

    /// Guards a group whose leader is the agent supervisor.
    pub(crate) fn supervised(leader_pid: u32) -> Self {
        // Not `..ProcessGroupGuard::new(…)`: that temporary would be dropped, killing the group.
        ProcessGroupGuard {
            pgid: Pid::from_raw(leader_pid.cast_signed()),
            armed: true,
            supervised: true,
        }
    }

    /// The group is known to be empty: its id may be reused, so it must not be signalled again.
    pub(crate) fn disarm(&mut self) {
        self.armed = false;
    }
}

impl Drop for ProcessGroupGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        // Nothing to do on failure: `ESRCH` means there is nothing left to kill.
        if self.supervised {
            // The leader's pid is its group's id, so it is not reused while the group lives.
            if self.pgid.as_raw() > 1 {
                let _ = kill(self.pgid, KILL_TREE_SIGNAL);
            }
        } else {
            let _ = signal_group(self.pgid, Signal::SIGKILL);
        }
    }
}

fn signal_group(pgid: Pid, signal: Signal) -> nix::Result<()> {
    // `killpg` with 0 signals our own group, and 1 is init's: never a spawned agent's group.
    if pgid.as_raw() <= 1 {
        return Err(Errno::ESRCH);
    }
    killpg(pgid, signal)
}

/// Whether the group is empty. Reaps the leader if it has exited, since its zombie would keep the
/// group alive (and `ESRCH` from coming back).
fn group_is_gone(leader: &mut Child, pgid: Pid) -> bool {
    // An error means the leader was already reaped (by `wait`) or cannot be waited for; either way
    // the signal-0 probe below is what decides.
    let _ = leader.try_wait();
    pgid.as_raw() <= 1 || matches!(killpg(pgid, None), Err(Errno::ESRCH))
}

/// Waits for the leader to exit or one poll interval, whichever is first, but not past `until`.
async fn wait_a_little(leader: &mut Child, until: Instant) {
    let next_poll = (Instant::now() + POLL_INTERVAL).min(until);
    tokio::select! {
        _ = leader.wait() => {
            // Reaped; the group may still have members, so the caller's probe decides. Sleep out
            // the interval so a lingering group is not probed in a busy loop.
            tokio::time::sleep_until(next_poll).await;
        }
        () = tokio::time::sleep_until(next_poll) => {}
    }
}

#[cfg(test)]
mod tests {
    use std::process::Stdio;

    use super::*;
    use tokio::io::{AsyncBufReadExt, BufReader};
    use tokio::process::Command;

    fn spawn_group(script: &str) -> (Child, ProcessGroupGuard) {
        let mut command = Command::new("/bin/sh");
        command
            .arg("-c")
            .arg(script)
            .process_group(0)
            .kill_on_drop(true)
            .stdin(Stdio::null())
            .stdout(Stdio::piped());
        let child = command.spawn().expect("spawn /bin/sh");
        let guard = ProcessGroupGuard::new(child.id().expect("pid of a running child"));
        (child, guard)
    }

    /// Reads the grandchild's pid the script prints first, which also proves the traps are set.
    async fn first_line_pid(child: &mut Child) -> Pid {
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(5), lines.next_line())
            .await
            .expect("script printed in time")
            .expect("read stdout")
            .expect("a line");
        Pid::from_raw(line.trim().parse().expect("a pid"))
    }

    #[tokio::test]
    async fn terminate_stops_the_leader_and_its_grandchildren() {
        let (mut child, mut guard) = spawn_group("sleep 1000 & echo $!; sleep 1000");
        let grandchild = first_line_pid(&mut child).await;
        let end = terminate_group(&mut child, &mut guard, Duration::from_secs(5)).await;
        assert_eq!(end, GroupEnd::Terminated);
        assert_eq!(kill(grandchild, None), Err(Errno::ESRCH));
        assert!(!guard.armed);
    }

    #[tokio::test]
    async fn members_that_ignore_sigterm_are_killed_after_the_grace() {
        let (mut child, mut guard) = spawn_group(
            "trap '' TERM; sh -c 'trap \"\" TERM; echo $$; while :; do sleep 1; done' & wait",
        );
        let grandchild = first_line_pid(&mut child).await;
        let end = terminate_group(&mut child, &mut guard, Duration::from_millis(200)).await;
        assert_eq!(end, GroupEnd::Killed);
        assert_eq!(kill(grandchild, None), Err(Errno::ESRCH));
    }

    #[tokio::test]
    async fn an_exited_group_is_already_gone() {
        let (mut child, mut guard) = spawn_group("exit 0");
        child.wait().await.expect("wait");
        let end = terminate_group(&mut child, &mut guard, Duration::from_secs(5)).await;
        assert_eq!(end, GroupEnd::AlreadyGone);
    }

    #[tokio::test]
    async fn dropping_the_guard_kills_the_group() {
        let (mut child, guard) = spawn_group("sleep 1000 & echo $!; sleep 1000");
        let grandchild = first_line_pid(&mut child).await;
        drop(guard);
        // The leader dies of the SIGKILL; reap it, then the grandchild must be gone too
        // (init reaps it once it is orphaned, which may take a moment).
        let status = tokio::time::timeout(Duration::from_secs(5), child.wait())
            .await
            .expect("leader died")
            .expect("wait");
        assert!(!status.success());
        let deadline = Instant::now() + Duration::from_secs(5);
        while kill(grandchild, None).is_ok() && Instant::now() < deadline {
            tokio::time::sleep(POLL_INTERVAL).await;
        }
        assert_eq!(kill(grandchild, None), Err(Errno::ESRCH));
    }
}
