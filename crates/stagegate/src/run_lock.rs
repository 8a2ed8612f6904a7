//! The run lock's holder: who this process is, and whether the process a lock names still lives.
//!
//! A pid alone does not name a process for long. Pids are reused, and every container's first
//! process is pid 1: a stagegate killed while it was pid 1 of its container left a lock that
//! `kill -0 1` finds "alive" forever (it is the host's init, or the next container's). So a lock
//! records three things, and its holder lives only while all three still match:
//!
//! - the boot id (`/proc/sys/kernel/random/boot_id`): a lock from before a restart is dead,
//!   whatever runs under its pid now; it is the same in every container of one kernel;
//! - the pid, looked up in our own `/proc`;
//! - the process's start time (field 22 of `/proc/<pid>/stat`, clock ticks since boot), which
//!   the same kernel reports in every PID namespace: a later process given the same pid started
//!   later.
//!
//! A holder in another PID namespace is judged from ours: its pid here is some other process (or
//! none), with another start time, so it counts as dead — which is right for the lock left by a
//! killed container, and why a live stagegate in another container does not block a run here
//! (the database is not meant to be shared between PID namespaces that run at once). A lock
//! written before schema version 2 has no boot id or start time and is judged by its pid alone.
//! What no check can see through, a person frees with `stagegate unlock RUN`.

use std::cell::RefCell;
use std::path::Path;

use stagegate_engine::event::now_ms;
use stagegate_store::{LockRecord, RunState};

use crate::error::AppError;
use crate::session::Session;
use crate::workspace::Feature;

/// Who holds a lock: a process named so that a later process with the same pid is not it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessIdentity {
    pub pid: u32,
    pub boot_id: Option<String>,
    pub start_ticks: Option<u64>,
}

impl ProcessIdentity {
    /// This process.
    ///
    /// The pid is the one our `/proc` knows us by (`/proc/self/stat`), which is the pid other
    /// stagegate processes sharing that `/proc` will look up; it differs from `getpid()` only
    /// when `/proc` belongs to an outer PID namespace (`unshare --pid` without `--mount-proc`).
    pub fn current() -> Self {
        let stat = std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|text| ProcessStat::parse(&text));
        ProcessIdentity {
            pid: stat.as_ref().map_or_else(std::process::id, |stat| stat.pid),
            boot_id: boot_id(),
            start_ticks: stat.map(|stat| stat.start_ticks),
        }
    }
}

/// Whether the holder of `lock` is alive, and if not, why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holder {
    Alive,
    /// Dead, with the reason in words that complete "run R is considered dead: …".
    Dead(String),
}

/// Whether the process that holds `lock` still runs: the same boot, a process with its pid, and
/// that process started when the holder did (only the pid, for a lock without the other two).
pub fn holder_is_alive(lock: &LockRecord) -> bool {
    holder(lock) == Holder::Alive
}

/// [`holder_is_alive`], with the reason when it is not.
pub fn holder(lock: &LockRecord) -> Holder {
    if let (Some(theirs), Some(ours)) = (&lock.boot_id, boot_id())
        && *theirs != ours
    {
        return Holder::Dead(format!(
            "it took the lock before the machine last started (boot {theirs}, now {ours})"
        ));
    }
    let pid = lock.pid;
    if !Path::new("/proc/self/stat").exists() {
        // No /proc (not Linux, or not mounted): the pid is all there is to ask about.
        return if process_is_alive(pid) {
            Holder::Alive
        } else {
            Holder::Dead(format!("its process {pid} no longer exists"))
        };
    }
    let Some(stat) = std::fs::read_to_string(Path::new("/proc").join(pid.to_string()).join("stat"))
        .ok()
        .and_then(|text| ProcessStat::parse(&text))
    else {
        return Holder::Dead(format!("its process {pid} no longer exists"));
    };
    if stat.is_zombie {
        return Holder::Dead(format!("its process {pid} has exited"));
    }
    match lock.start_ticks {
        Some(ticks) if ticks != stat.start_ticks => Holder::Dead(format!(
            "its process {pid} started at a different time: it is gone, and pid {pid} is another process now"
        )),
        _ => Holder::Alive,
    }
}

/// Takes the lock of `stage` on this feature for `run_id`: one active run per feature and
/// stage. A lock whose holder is dead is taken over, with a note saying why it counts as dead,
/// and its run is marked interrupted.
pub async fn lock_stage(
    session: &Session,
    feature: &Feature,
    stage: &str,
    run_id: &str,
) -> Result<(), AppError> {
    let me = ProcessIdentity::current();
    let lock = LockRecord {
        feature_dir: feature.key.clone(),
        stage: stage.to_owned(),
        run_id: run_id.to_owned(),
        pid: me.pid,
        acquired_at_ms: now_ms(),
        boot_id: me.boot_id,
        start_ticks: me.start_ticks,
    };
    let store = &session.store;
    // Why the holder counts as dead, as judged inside the store's transaction.
    let verdict = RefCell::new(None);
    let previous = store
        .acquire_lock(&lock, |holder_lock| match holder(holder_lock) {
            Holder::Alive => true,
            Holder::Dead(reason) => {
                *verdict.borrow_mut() = Some(reason);
                false
            }
        })
        .await?;
    let Some(previous) = previous else {
        return Ok(());
    };
    let reason = verdict
        .into_inner()
        .unwrap_or_else(|| format!("its process {} is gone", previous.pid));
    let mut note = format!(
        "note: took over the lock of stage {stage} from run {}: {reason}",
        previous.run_id
    );
    if let Some(run) = store.run(&previous.run_id).await?
        && run.state == RunState::Running
    {
        store
            .update_run(&run.id, RunState::Interrupted, run.current_stage.as_deref())
            .await?;
        note.push_str(&format!(
            "\nnote: run {} had stopped without finishing; it is marked interrupted\nhint: `stagegate resume {}` continues it",
            run.id, run.id
        ));
    }
    eprintln!("{note}");
    Ok(())
}

/// Whether a process with this pid exists (signal 0; "not permitted" still means it exists):
/// the check of last resort, without `/proc`.
pub fn process_is_alive(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
        Ok(()) => true,
        Err(errno) => errno == nix::errno::Errno::EPERM,
    }
}

/// This boot's id, if the kernel tells it.
fn boot_id() -> Option<String> {
    let text = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let id = text.trim();
    (!id.is_empty()).then(|| id.to_owned())
}

/// What a lock needs of `/proc/<pid>/stat`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ProcessStat {
    pid: u32,
    is_zombie: bool,
    start_ticks: u64,
}

impl ProcessStat {
    /// `PID (COMM) STATE PPID … STARTTIME …`: COMM may hold spaces and parentheses, so the
    /// fields are counted from the last `)`; STATE is field 3 and STARTTIME field 22.
    fn parse(text: &str) -> Option<Self> {
        let (head, rest) = text.rsplit_once(')')?;
        let pid = head.split_once(" (")?.0.trim().parse().ok()?;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let state = fields.first()?;
        // fields[0] is field 3; field 22 is fields[19].
        let start_ticks = fields.get(19)?.parse().ok()?;
        Some(ProcessStat {
            pid,
            is_zombie: matches!(*state, "Z" | "X" | "x"),
            start_ticks,
        })
    }
}

#[cfg(test)]
mod tests {
    #![expect(
        clippy::unwrap_used,
        reason = "a failing test should stop at the failing line"
    )]

    use super::*;

    fn lock_of(identity: &ProcessIdentity) -> LockRecord {
        LockRecord {
            feature_dir: "specs/001-demo".to_owned(),
            stage: "plan".to_owned(),
            run_id: "r1".to_owned(),
            pid: identity.pid,
            acquired_at_ms: 1,
            boot_id: identity.boot_id.clone(),
            start_ticks: identity.start_ticks,
        }
    }

    #[test]
    fn a_stat_line_is_read_from_its_last_parenthesis() {
        let line = "4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 120 0 0 0 1 2 0 0 20 0 1 0 987654 12345678 300 18446744073709551615";
        assert_eq!(
            ProcessStat::parse(line),
            Some(ProcessStat {
                pid: 4242,
                is_zombie: false,
                start_ticks: 987_654,
            })
        );
        let zombie = "7 (sh) Z 1 7 7 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 55 0 0";
        assert!(ProcessStat::parse(zombie).unwrap().is_zombie);
        assert_eq!(ProcessStat::parse("7 (sh) S 1 2"), None);
        assert_eq!(ProcessStat::parse(""), None);
    }

    #[test]
    fn this_process_holds_a_live_lock() {
        let me = ProcessIdentity::current();
        assert_eq!(
            me.pid,
            std::process::id(),
            "no PID namespace games in tests"
        );
        assert!(me.boot_id.is_some(), "{me:?}");
        assert!(me.start_ticks.is_some(), "{me:?}");
        assert_eq!(holder(&lock_of(&me)), Holder::Alive);
    }

    #[test]
    fn the_same_pid_with_another_start_time_or_boot_is_dead() {
        let me = ProcessIdentity::current();
        let later = LockRecord {
            start_ticks: me.start_ticks.map(|ticks| ticks + 1),
            ..lock_of(&me)
        };
        match holder(&later) {
            Holder::Dead(reason) => assert!(
                reason.contains(&format!(
                    "its process {} started at a different time",
                    me.pid
                )),
                "{reason}"
            ),
            Holder::Alive => panic!("a different start time is another process"),
        }
        let before_a_restart = LockRecord {
            boot_id: Some("00000000-0000-0000-0000-000000000000".to_owned()),
            ..lock_of(&me)
        };
        assert!(!holder_is_alive(&before_a_restart));
    }

    #[test]
    fn a_lock_without_boot_id_or_start_time_is_judged_by_its_pid() {
        let me = ProcessIdentity::current();
        let old = LockRecord {
            boot_id: None,
            start_ticks: None,
            ..lock_of(&me)
        };
        assert!(holder_is_alive(&old));
        // A pid above the kernel's maximum (2^22) never exists.
        let gone = LockRecord {
            pid: 4_194_305 + 1,
            ..old
        };
        assert_eq!(
            holder(&gone),
            Holder::Dead("its process 4194306 no longer exists".to_owned())
        );
    }

    #[test]
    fn an_exited_child_not_yet_reaped_is_dead() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let stat_path = format!("/proc/{pid}/stat");
        // Wait until it has exited (a zombie until reaped below).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !std::fs::read_to_string(&stat_path)
            .ok()
            .and_then(|text| ProcessStat::parse(&text))
            .is_some_and(|stat| stat.is_zombie)
        {
            assert!(std::time::Instant::now() < deadline, "`true` did not exit");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let zombie = LockRecord {
            pid,
            boot_id: boot_id(),
            start_ticks: None,
            ..lock_of(&ProcessIdentity::current())
        };
        assert_eq!(
            holder(&zombie),
            Holder::Dead(format!("its process {pid} has exited"))
        );
        child.wait().unwrap();
    }
}
