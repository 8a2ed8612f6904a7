//! Run locks that cannot outlive their holder: a lock names its process by boot id, pid and
//! start time, so a lock left by a stagegate killed as PID 1 of a PID namespace (any container),
//! or one whose pid now belongs to another process, is taken over with a note; a live holder
//! blocks with a message that names the run and suggests `stagegate unlock`, never `kill`; and
//! `stagegate unlock RUN` frees what is left.

use std::path::Path;
use std::process::{Child, Command};
use std::time::Duration;

use serde_json::Value;
use stagegate_store::{LockRecord, RunState};

use crate::harness::{
    EXIT_AWAITING_DECISION, EXIT_DONE, EXIT_INTERNAL, EXIT_USAGE, FEATURE, TestRepo, wait_until,
    with_store,
};

/// How long to wait for something a background run does.
const WAIT: Duration = Duration::from_secs(30);

/// The agent the namespace tests wait for (it hangs until killed).
const HANGING_AGENT: &str = "requirements-analyst";

/// What `unshare` runs stagegate under: a new PID namespace (stagegate is its pid 1) with its own
/// `/proc`; `--kill-child` so that killing `unshare` also ends everything inside.
const AS_PID_1: [&str; 5] = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"];

/// A `sleep` that is killed when the test ends, however it ends.
struct Sleeper(Child);

impl Sleeper {
    fn start() -> Self {
        Sleeper(
            Command::new("sleep")
                .arg("300")
                .spawn()
                .expect("start sleep"),
        )
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `unshare` and everything under it, killed when the test ends, however it ends.
struct Namespace(Option<Child>);

impl Drop for Namespace {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Field 22 of `/proc/<pid>/stat` (STARTTIME), counted from the last `)`.
fn start_ticks(pid: u32) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc/PID/stat");
    let (_, rest) = text.rsplit_once(')').expect("a stat line");
    rest.split_whitespace()
        .nth(19)
        .and_then(|field| field.parse().ok())
        .expect("field 22 of /proc/PID/stat")
}

fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .expect("read the boot id")
        .trim()
        .to_owned()
}

/// Writes a lock of the plan stage for `run_id` as if `pid` (with that boot id and start time)
/// held it, and records the run as running, as a stagegate that died in its plan stage leaves
/// them.
fn forge_lock(repo: &TestRepo, run_id: &str, pid: u32, boot: Option<&str>, ticks: Option<u64>) {
    let lock = LockRecord {
        feature_dir: FEATURE.to_owned(),
        stage: "plan".to_owned(),
        run_id: run_id.to_owned(),
        pid,
        acquired_at_ms: 1,
        boot_id: boot.map(str::to_owned),
        start_ticks: ticks,
    };
    with_store(repo, async |store| {
        store
            .acquire_lock(&lock, |_| false)
            .await
            .expect("forge the lock");
        store
            .update_run(run_id, RunState::Running, Some("plan"))
            .await
            .expect("record the run as running");
    });
}

fn locks(repo: &TestRepo) -> Vec<LockRecord> {
    with_store(repo, async |store| {
        store.locks().await.expect("read the locks")
    })
}

fn state_of(status: &Value, run_id: &str) -> String {
    status["runs"]
        .as_array()
        .expect("status --json has runs")
        .iter()
        .find(|run| run["id"] == run_id)
        .and_then(|run| run["state"].as_str())
        .unwrap_or_else(|| panic!("no run {run_id} in {status:#}"))
        .to_owned()
}

/// Fails loudly where a PID namespace cannot be made: this suite's PID-1 tests must not pass
/// by not running.
fn require_unshare() {
    let output = Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "sh", "-c", "echo $$"])
        .output()
        .unwrap_or_else(|error| {
            panic!("`unshare` cannot be run ({error}); it is needed (util-linux, as root)")
        });
    assert!(
        output.status.success() && String::from_utf8_lossy(&output.stdout).trim() == "1",
        "`unshare --pid --fork --mount-proc sh -c 'echo $$'` must print 1 (this test needs root or \
         user namespaces): {output:?}"
    );
}

/// The pid, in our namespace, of `unshare`'s child: the process that is pid 1 inside.
fn pid_1_of(unshare: &Child) -> u32 {
    let parent = unshare.id();
    wait_until(WAIT, "unshare's child", || {
        let entries = std::fs::read_dir("/proc").ok()?;
        entries.flatten().find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let status = std::fs::read_to_string(entry.path().join("status")).ok()?;
            let ppid = status
                .lines()
                .find_map(|line| line.strip_prefix("PPid:"))?
                .trim()
                .parse::<u32>()
                .ok()?;
            (ppid == parent).then_some(pid)
        })
    })
}

/// The pids `pid` has in each PID namespace it is in, outermost first (`NSpid:`).
fn namespace_pids(pid: u32) -> Vec<String> {
    let status = std::fs::read_to_string(Path::new("/proc").join(pid.to_string()).join("status"))
        .expect("read /proc/PID/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("NSpid:"))
        .expect("an NSpid line")
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// Starts `stagegate run plan --no-input` as pid 1 of a new PID namespace, waits until its
/// hanging agent has started (the lock is taken and the run recorded by then), then kills it
/// with SIGKILL — the namespace's init, so the kernel kills everything in it. Returns the run id
/// and what the killed stagegate had written on stderr.
fn run_as_pid_1_and_kill(repo: &TestRepo) -> (String, String) {
    let started = repo.fake_dir.join(format!("{HANGING_AGENT}.agent.started"));
    let _ = std::fs::remove_file(&started);
    let mut namespace = Namespace(Some(
        repo.spawn_wrapped(&AS_PID_1, &["run", "plan", "--no-input"]),
    ));
    let unshare = namespace.0.as_ref().expect("just started");
    let stagegate = pid_1_of(unshare);
    wait_until(WAIT, "the hanging agent to start", || {
        started.exists().then_some(())
    });
    assert_eq!(
        namespace_pids(stagegate).last().map(String::as_str),
        Some("1"),
        "stagegate is not pid 1 of its namespace"
    );
    let comm = std::fs::read_to_string(format!("/proc/{stagegate}/comm")).unwrap_or_default();
    assert_eq!(comm.trim(), "stagegate", "unshare's child is not stagegate");

    Command::new("kill")
        .args(["-9", &stagegate.to_string()])
        .status()
        .expect("kill -9 stagegate");
    let unshare = namespace.0.take().expect("still there");
    let output = unshare.wait_with_output().expect("wait for unshare");
    assert!(
        !output.status.success(),
        "stagegate ended by itself: {output:?}"
    );
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let run_id = stderr
        .lines()
        .find_map(|line| {
            let rest = line.strip_prefix("run ")?;
            rest.contains(" on ")
                .then(|| rest.split_whitespace().next().map(str::to_owned))
                .flatten()
        })
        .unwrap_or_else(|| panic!("no `run ID on FEATURE` line: {stderr}"));
    (run_id, stderr)
}

/// A repository whose `HANGING_AGENT` hangs (until killed, or 5 minutes) and whose other plan
/// agents answer at once.
fn repo_with_a_hanging_agent() -> TestRepo {
    TestRepo::with_approved_spec()
        .set("adaptive", "enabled", "false")
        .set("timeouts", "default", "\"300s\"")
        .set("timeouts", "stage", "\"600s\"")
        .behaviour(HANGING_AGENT, "started-then-sleep 300")
}

/// The issue this file is about: a stagegate killed while it was PID 1 (of a container, here of
/// `unshare --pid`) left a lock that `kill -0 1` calls alive forever. Twice in a namespace (the
/// second one is pid 1 too, and must not take the dead one's lock for its own), then on the
/// host: each takes the dead holder's lock over and says why.
#[test]
fn a_lock_left_by_a_dead_pid_1_does_not_block_the_next_run() {
    require_unshare();
    let repo = repo_with_a_hanging_agent();

    let (first, _) = run_as_pid_1_and_kill(&repo);
    let held = locks(&repo);
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!((held[0].run_id.as_str(), held[0].pid), (first.as_str(), 1));
    assert_eq!(held[0].boot_id.as_deref(), Some(boot_id().as_str()));
    assert!(held[0].start_ticks.is_some(), "{held:?}");
    // Judged from here, pid 1 is this machine's init: the run is not running.
    assert_eq!(state_of(&repo.status(), &first), "interrupted");

    let (second, stderr) = run_as_pid_1_and_kill(&repo);
    assert_ne!(second, first);
    for expected in [
        format!("took over the lock of stage plan from run {first}"),
        "its process 1 started at a different time".to_owned(),
        format!("run {first} had stopped without finishing; it is marked interrupted"),
    ] {
        assert!(stderr.contains(&expected), "{expected:?} not in: {stderr}");
    }

    let repo = repo.behaviour(HANGING_AGENT, "sleep 0.05");
    let outcome = repo
        .run(&["run", "plan", "--no-input"])
        .expect_code(EXIT_AWAITING_DECISION)
        .stderr_has(&format!(
            "took over the lock of stage plan from run {second}"
        ))
        .stderr_has("its process 1 started at a different time")
        .stderr_has("marked interrupted");
    assert!(!outcome.stderr.contains("kill"), "{outcome:?}");
    let third = outcome.run_id();
    let status = repo.status();
    assert_eq!(state_of(&status, &first), "interrupted");
    assert_eq!(state_of(&status, &second), "interrupted");
    assert_eq!(state_of(&status, &third), "awaiting_decision");
    assert!(locks(&repo).is_empty(), "the gate's wait holds no lock");
}

/// A lock naming a live process that is not its holder: the pid was given to another process
/// (another start time), or the lock is from before the machine restarted (another boot id).
#[test]
fn a_lock_whose_pid_is_another_process_now_is_taken_over() {
    let repo = TestRepo::with_approved_spec();
    let sleeper = Sleeper::start();
    let pid = sleeper.pid();
    let ticks = start_ticks(pid);
    let boot = boot_id();
    let mut holder = repo.run_plan_to_gate();
    for (boot, ticks, why) in [
        (
            boot.as_str(),
            ticks + 1,
            format!("its process {pid} started at a different time"),
        ),
        (
            boot.as_str(),
            ticks - 1,
            format!("its process {pid} started at a different time"),
        ),
        (
            "00000000-0000-0000-0000-000000000000",
            ticks,
            "before the machine last started".to_owned(),
        ),
    ] {
        forge_lock(&repo, &holder, pid, Some(boot), Some(ticks));
        assert_eq!(state_of(&repo.status(), &holder), "interrupted");

        let outcome = repo
            .run(&["run", "plan", "--no-input"])
            .expect_code(EXIT_AWAITING_DECISION)
            .stderr_has(&format!(
                "took over the lock of stage plan from run {holder}"
            ))
            .stderr_has(&why)
            .stderr_has(&format!("run {holder} had stopped without finishing"));
        let next = outcome.run_id();
        assert_ne!(next, holder);
        // Marked interrupted when its lock was taken over, then superseded when the new run
        // reached the gate that the old one had left waiting.
        assert_eq!(state_of(&repo.status(), &holder), "superseded");
        holder = next;
    }
    assert!(locks(&repo).is_empty());
}

/// A live holder blocks `run` (exit 1) with a message that names the run, its process and
/// `stagegate unlock`, and never suggests killing a pid; `status` shows the run running.
#[test]
fn a_live_holder_blocks_and_the_message_suggests_unlock_not_kill() {
    let repo = TestRepo::with_approved_spec();
    let sleeper = Sleeper::start();
    let pid = sleeper.pid();
    let holder = repo.run_plan_to_gate();
    for (boot, ticks) in [
        (Some(boot_id()), Some(start_ticks(pid))),
        // A lock written before schema version 2: the pid is all there is.
        (None, None),
    ] {
        forge_lock(&repo, &holder, pid, boot.as_deref(), ticks);
        assert_eq!(state_of(&repo.status(), &holder), "running");
        for _ in 0..3 {
            let refused = repo
                .run(&["run", "plan", "--no-input"])
                .expect_code(EXIT_INTERNAL)
                .stderr_has(&format!(
                    "stage plan of {FEATURE} is already being run by run {holder} (process {pid}"
                ))
                .stderr_has(&format!("`stagegate unlock {holder}`"));
            assert!(!refused.stderr.contains("kill"), "{refused:?}");
        }
        assert_eq!(locks(&repo).len(), 1);
        assert_eq!(repo.run_count(), 1, "a refused run leaves no trace");
    }
}

#[test]
fn unlock_frees_a_dead_holders_locks_and_refuses_a_live_one_without_force() {
    let repo = TestRepo::with_approved_spec();
    repo.run(&["unlock", "20260101-000000-0000"])
        .expect_code(EXIT_USAGE)
        .stderr_has("no run 20260101-000000-0000");
    let run = repo.run_plan_to_gate();
    repo.run(&["unlock", &run])
        .expect_code(EXIT_DONE)
        .stderr_has(&format!("run {run} holds no lock"));
    assert_eq!(state_of(&repo.status(), &run), "awaiting_decision");

    // A dead holder (its pid is another process now): freed without --force, the run marked
    // interrupted.
    let sleeper = Sleeper::start();
    let pid = sleeper.pid();
    let ticks = start_ticks(pid);
    for _ in 0..2 {
        forge_lock(&repo, &run, pid, Some(&boot_id()), Some(ticks + 7));
        repo.run(&["unlock", &run])
            .expect_code(EXIT_DONE)
            .stderr_has(&format!(
                "removed the lock(s) of run {run}: stage plan of {FEATURE} (process {pid})"
            ))
            .stderr_has(&format!("run {run} is marked interrupted"));
        assert!(locks(&repo).is_empty());
        assert_eq!(state_of(&repo.status(), &run), "interrupted");
    }

    // A live holder: refused, the lock kept, until --force.
    forge_lock(&repo, &run, pid, Some(&boot_id()), Some(ticks));
    for _ in 0..2 {
        let refused = repo
            .run(&["unlock", &run])
            .expect_code(EXIT_INTERNAL)
            .stderr_has(&format!("run {run} is still running"))
            .stderr_has(&format!("process {pid}"))
            .stderr_has(&format!("stagegate unlock {run} --force"));
        assert!(!refused.stderr.contains("kill"), "{refused:?}");
        assert_eq!(locks(&repo).len(), 1);
    }
    repo.run(&["run", "plan", "--no-input"])
        .expect_code(EXIT_INTERNAL)
        .stderr_has(&format!("already being run by run {run}"));
    repo.run(&["unlock", &run, "--force"])
        .expect_code(EXIT_DONE)
        .stderr_has(&format!("removed the lock(s) of run {run}"))
        .stderr_has("marked interrupted");
    assert!(locks(&repo).is_empty());

    // Free: the next run starts without taking anything over.
    let outcome = repo
        .run(&["run", "plan", "--no-input"])
        .expect_code(EXIT_AWAITING_DECISION);
    assert!(!outcome.stderr.contains("took over"), "{outcome:?}");
}
