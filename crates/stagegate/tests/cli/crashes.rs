//! Crashes: `kill -9` at random points of `run`, `approve` (publishing) and `modify --feedback`
//! (rework), with the cache off and on. Afterwards `resume` finishes, no attempt that finished
//! is called again or has its files rewritten, the feature directory holds the old set of
//! artifacts or the new one and no temporary file, and a killed modification leaves the gate
//! with the round it had.
//!
//! Each test is a loop of iterations whose kill points come from a small deterministic PRNG
//! seeded per iteration. Every iteration prints its seed (shown when the test fails); to replay
//! one, run the test with `CRASH_SEED=<seed>` (one iteration with that seed). `CRASH_ITERATIONS`
//! changes how many iterations each test makes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Child;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::harness::{
    Call, EXIT_ALREADY_DECIDED, EXIT_AWAITING_DECISION, EXIT_DONE, FEATURE, PLAN_AGENTS, TestRepo,
    poll, wait_until,
};

/// How long to wait for something a background command does.
const WAIT: Duration = Duration::from_secs(30);

/// A call that the fake agent logged as ended this long before the kill has certainly been
/// recorded by stagegate (it records an answer a few milliseconds after the agent exits).
const RECORDED_MARGIN_MS: u64 = 500;

/// xorshift64*: a tiny deterministic PRNG, enough to choose kill points.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        // Never zero (xorshift's fixed point); the multiplication spreads small seeds.
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..bound`.
    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound.max(1)
    }

    fn coin(&mut self) -> bool {
        self.next() >> 63 == 1
    }
}

/// The seeds of a test's iterations: `CRASH_SEED` alone when set (a replay), else
/// `CRASH_ITERATIONS` (or `default`) seeds from the clock.
fn seeds(default: usize) -> Vec<u64> {
    if let Some(seed) = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
    {
        return vec![seed];
    }
    let iterations = std::env::var("CRASH_ITERATIONS")
        .ok()
        .and_then(|count| count.parse().ok())
        .unwrap_or(default);
    let base = now_ms().wrapping_mul(1000) + u64::from(std::process::id() % 1000);
    (0..iterations as u64).map(|i| base + i).collect()
}

/// Milliseconds since the epoch, the fake agent's clock (`date +%s%3N`).
fn now_ms() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("the clock is after 1970")
            .as_millis(),
    )
    .unwrap_or(u64::MAX)
}

/// How a background command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// Killed with SIGKILL at this time (ms since the epoch).
    Killed { at_ms: u64 },
    /// It ended by itself before the kill point, with this exit code.
    Exited(i32),
}

/// Waits `delay`, then kills `child` with SIGKILL unless it already ended; reaps it.
fn kill_after(child: &mut Child, delay: Duration) -> Ending {
    std::thread::sleep(delay);
    if let Some(status) = child.try_wait().expect("wait for stagegate") {
        return Ending::Exited(status.code().unwrap_or(-1));
    }
    let at_ms = now_ms();
    // `Child::kill` sends SIGKILL on Unix.
    child.kill().expect("kill -9 stagegate");
    let status = child.wait().expect("reap stagegate");
    match std::os::unix::process::ExitStatusExt::signal(&status) {
        Some(9) => Ending::Killed { at_ms },
        // It ended between the check and the kill.
        _ => Ending::Exited(status.code().unwrap_or(-1)),
    }
}

/// Every file under `directory` (recursively) as relative path → bytes; empty when it does not
/// exist.
fn tree(directory: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut pending = vec![directory.to_path_buf()];
    while let Some(current) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&current) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                let relative = path
                    .strip_prefix(directory)
                    .expect("under the directory")
                    .display()
                    .to_string();
                files.insert(relative, bytes);
            }
        }
    }
    files
}

/// Names of files under `directory` (recursively) that are stagegate's temporary files.
fn temporaries(directory: &Path) -> Vec<String> {
    tree(directory)
        .into_keys()
        .filter(|path| {
            Path::new(path)
                .file_name()
                .is_some_and(|name| name.to_string_lossy().starts_with(".stagegate-tmp-"))
        })
        .collect()
}

/// The id of the only run, if one was recorded.
fn recorded_run(repo: &TestRepo) -> Option<String> {
    let status = poll(Duration::from_secs(5), || repo.try_status())?;
    status["runs"][0]["id"].as_str().map(str::to_owned)
}

fn gate_state(status: &Value, stage: &str) -> String {
    status["gates"]
        .as_array()
        .and_then(|gates| gates.iter().find(|gate| gate["stage"] == stage))
        .and_then(|gate| gate["state"].as_str())
        .unwrap_or_else(|| panic!("no {stage} gate in {status:#}"))
        .to_owned()
}

fn decision_kinds(status: &Value) -> Vec<String> {
    status["decisions"]
        .as_array()
        .expect("status RUN --json has decisions")
        .iter()
        .map(|decision| decision["kind"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// A call's place among the run's attempts: (phase, agent or `agent.artifact`), as
/// `stagegate show RUN` names it.
fn place(call: &Call) -> (String, String) {
    let agent = if call.key.artifact == "-" {
        call.key.agent.clone()
    } else {
        format!("{}.{}", call.key.agent, call.key.artifact)
    };
    (call.key.phase.clone(), agent)
}

/// (phase, agent) of every attempt of the plan stage of `run` that recorded an answer. An
/// answer is recorded in the same commit as the attempt's outcome, so each is a finished one.
/// Each maps to the attempt's number and recorded output.
fn finished_attempts(repo: &TestRepo, run: &str) -> BTreeMap<(String, String), (u32, String)> {
    repo.attempts(run)
        .into_iter()
        .filter(|row| row.stage == "plan" && matches!(row.outcome.as_str(), "ok" | "cached"))
        .map(|row| {
            let output = repo
                .attempt_text(run, "plan", &row.agent, row.attempt, "output")
                .unwrap_or_default();
            ((row.phase, row.agent), (row.attempt, output))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// 1. kill -9 of `run`, then `resume`

/// A plan stage taking a second or two: every phase's agent sleeps a little.
fn slowish_repo(cache: bool) -> TestRepo {
    let mut repo = TestRepo::with_approved_spec().set("timeouts", "default", "\"10s\"");
    if !cache {
        for phase in ["agent", "review", "synthesis", "qa"] {
            repo = repo.set("cache", phase, "\"0s\"");
        }
    }
    let repo = PLAN_AGENTS
        .iter()
        .fold(repo, |repo, agent| repo.behaviour(agent, "sleep 0.3"));
    repo.behaviour("lead-reviewer-a", "sleep 0.25")
        .behaviour("lead-synthesizer-a", "sleep 0.15")
        .behaviour("main-agent", "sleep 0.25")
}

fn killed_runs_resume_without_calling_finished_attempts_again(cache: bool, iterations: usize) {
    let mut tally: BTreeMap<&str, usize> = BTreeMap::new();
    for seed in seeds(iterations) {
        let mut rng = Rng::new(seed);
        let context = format!(
            "cache {}, seed {seed} (replay: CRASH_SEED={seed})",
            on(cache)
        );
        eprintln!("crashes: run then resume, {context}");
        let repo = slowish_repo(cache);
        let delay = Duration::from_millis(100 + rng.below(2200));
        let mut stagegate = repo.spawn(&["run", "plan", "--no-input"]);
        let ending = kill_after(&mut stagegate, delay);
        let Some(run) = recorded_run(&repo) else {
            assert!(
                repo.calls().0.is_empty(),
                "no run was recorded but agents ran; {context}"
            );
            *tally
                .entry("killed before the run was recorded")
                .or_default() += 1;
            continue;
        };
        let before = repo.calls();
        let kill_ms = match ending {
            Ending::Killed { at_ms } => {
                *tally.entry(killed_during(&before)).or_default() += 1;
                at_ms
            }
            Ending::Exited(code) => {
                assert_eq!(code, EXIT_AWAITING_DECISION, "{context}");
                *tally.entry("reached its gate before the kill").or_default() += 1;
                now_ms()
            }
        };
        let recorded = finished_attempts(&repo, &run);

        let resumed = repo.run(&["resume", &run, "--no-input"]);
        assert_eq!(
            resumed.code, EXIT_AWAITING_DECISION,
            "resume did not reach the gate; {context}: {resumed:?}"
        );

        // Who had finished before the kill: every attempt whose answer is recorded, and every
        // call the fake agent saw end well before the kill.
        let mut finished: BTreeSet<(String, String)> = recorded.keys().cloned().collect();
        finished.extend(
            before
                .0
                .iter()
                .filter(|call| {
                    call.status.as_deref() == Some("ok")
                        && call
                            .end
                            .is_some_and(|end| end + RECORDED_MARGIN_MS <= kill_ms)
                })
                .map(place),
        );
        let after = repo.calls();
        let started_before: BTreeSet<u64> = before.0.iter().map(|call| call.start).collect();
        let again: Vec<&Call> = after.0[before.0.len()..]
            .iter()
            .filter(|call| finished.contains(&place(call)))
            .collect();
        assert!(
            again.is_empty(),
            "finished calls were made again after the kill; {context}\nagain: {again:#?}\nbefore the kill: {before:#?}"
        );
        // The first calls of the log are the same calls (the log only grows).
        assert!(
            after.0[..before.0.len()]
                .iter()
                .all(|call| started_before.contains(&call.start)),
            "{context}"
        );
        for ((_, agent), (attempt, output)) in &recorded {
            let now = repo
                .attempt_text(&run, "plan", agent, *attempt, "output")
                .unwrap_or_default();
            assert!(
                &now == output,
                "the output of {agent}'s finished attempt {attempt} was rewritten; {context}"
            );
        }
        let status = repo.run_status(&run);
        assert_eq!(gate_state(&status, "plan"), "pending", "{context}");
        assert_eq!(status["run"]["state"], "awaiting_decision", "{context}");
        for artifact in ["plan.md", "planning-summary.md"] {
            assert!(
                repo.run_dir(&run)
                    .join("plan/staged")
                    .join(artifact)
                    .is_file(),
                "{artifact} is not staged; {context}"
            );
        }
        assert_eq!(
            repo.run_count(),
            1,
            "the resume started another run; {context}"
        );
    }
    eprintln!("crashes: run then resume, cache {}: {tally:?}", on(cache));
}

/// Where a kill landed, for the tally: the phase of the calls in flight, or between calls.
fn killed_during(calls: &crate::harness::Calls) -> &'static str {
    let in_flight = calls
        .0
        .iter()
        .filter(|call| call.end.is_none())
        .map(|call| call.key.phase.as_str())
        .next();
    match in_flight {
        Some("agent") => "killed during the agents",
        Some("review") => "killed during the review",
        Some("synthesis") => "killed during the synthesis",
        Some("qa") => "killed during QA",
        Some(_) => "killed during another phase",
        None if calls.0.is_empty() => "killed before any call",
        None => "killed between calls",
    }
}

fn on(cache: bool) -> &'static str {
    if cache { "on" } else { "off" }
}

#[test]
fn crashes_run_killed_at_random_resumes_without_calling_finished_attempts_again_cache_off() {
    killed_runs_resume_without_calling_finished_attempts_again(false, 6);
}

#[test]
fn crashes_run_killed_at_random_resumes_without_calling_finished_attempts_again_cache_on() {
    killed_runs_resume_without_calling_finished_attempts_again(true, 6);
}

// ---------------------------------------------------------------------------------------------
// 2. kill -9 of `approve` while it publishes

/// A repository whose run of plan waits at its gate with large artifacts; the cache on or off.
fn repo_at_gate_with_big_artifacts(cache: bool) -> (TestRepo, String) {
    let mut repo = TestRepo::with_approved_spec().behaviour("lead-synthesizer-a", "big 600000");
    if !cache {
        for phase in ["agent", "review", "synthesis", "qa"] {
            repo = repo.set("cache", phase, "\"0s\"");
        }
    }
    // The synthesizer writes the optional artifacts too: more files to publish.
    std::fs::write(repo.fake_dir.join("skip-artifacts"), "").expect("write skip-artifacts");
    let run = repo.run_plan_to_gate();
    (repo, run)
}

#[test]
fn crashes_approve_killed_at_random_publishes_all_or_nothing() {
    let mut tally: BTreeMap<&str, usize> = BTreeMap::new();
    for seed in seeds(8) {
        let mut rng = Rng::new(seed);
        let cache = rng.coin();
        let context = format!(
            "cache {}, seed {seed} (replay: CRASH_SEED={seed})",
            on(cache)
        );
        eprintln!("crashes: approve, {context}");
        let (repo, run) = repo_at_gate_with_big_artifacts(cache);
        let staged = tree(&repo.run_dir(&run).join("plan/staged"));
        assert!(staged.len() >= 2, "{context}: staged {:?}", staged.keys());
        assert!(
            staged.keys().all(|name| !name.starts_with('.')),
            "{context}: staged {:?}",
            staged.keys()
        );
        let feature_before = tree(&repo.path(FEATURE));

        let delay = Duration::from_millis(rng.below(81));
        let mut approve = repo.spawn(&["approve", &run]);
        let ending = kill_after(&mut approve, delay);
        if let Ending::Exited(code) = ending {
            assert_eq!(code, EXIT_DONE, "approve failed; {context}");
        }

        // Any command finishes what the killed one left half done.
        let finishing = repo.run(&["status"]).expect_code(EXIT_DONE);
        let finished_publishing = finishing.stderr.contains("finished publishing");
        let feature = tree(&repo.path(FEATURE));
        assert_eq!(
            temporaries(&repo.path(FEATURE)),
            Vec::<String>::new(),
            "stray temporary files in the feature directory; {context}"
        );
        let present: Vec<&String> = staged
            .keys()
            .filter(|name| feature.contains_key(*name))
            .collect();
        let published = !present.is_empty();
        if published {
            assert_eq!(
                present.len(),
                staged.len(),
                "a mix of published and unpublished artifacts; {context}: present {present:?} of {:?}",
                staged.keys()
            );
            for (name, bytes) in &staged {
                assert!(
                    &feature[name] == bytes,
                    "{name} in the feature directory is not the staged bytes; {context}"
                );
            }
        }
        // Nothing else in the feature directory changed.
        for (name, bytes) in &feature_before {
            assert_eq!(feature.get(name), Some(bytes), "{name} changed; {context}");
        }
        assert_eq!(
            feature.len(),
            feature_before.len() + present.len(),
            "unexpected files in the feature directory; {context}: {:?}",
            feature.keys()
        );

        let status = repo.run_status(&run);
        let gate = gate_state(&status, "plan");
        assert_eq!(
            gate == "approved",
            published,
            "the gate is {gate} but the artifacts are {}published; {context}",
            if published { "" } else { "not " }
        );
        if !published {
            assert_eq!(gate, "pending", "{context}");
        }
        *tally
            .entry(match (ending, published) {
                (Ending::Exited(_), _) => "approve ended by itself",
                (Ending::Killed { .. }, true) if finished_publishing => {
                    "killed after the decision committed, before its publication finished"
                }
                (Ending::Killed { .. }, true) => "killed after the publication finished",
                (Ending::Killed { .. }, false) => "killed before the decision committed",
            })
            .or_default() += 1;

        let again = repo.run(&["approve", &run]);
        let expected = if published {
            EXIT_ALREADY_DECIDED
        } else {
            EXIT_DONE
        };
        assert_eq!(again.code, expected, "{context}: {again:?}");
        let feature = tree(&repo.path(FEATURE));
        for (name, bytes) in &staged {
            assert!(
                feature.get(name) == Some(bytes),
                "{name} is not published after the second approve; {context}"
            );
        }
        assert_eq!(temporaries(&repo.path(FEATURE)), Vec::<String>::new());
        assert_eq!(
            gate_state(&repo.run_status(&run), "plan"),
            "approved",
            "{context}"
        );
    }
    eprintln!("crashes: approve: {tally:?}");
}

// ---------------------------------------------------------------------------------------------
// 3. kill -9 of `modify --feedback` while the rework runs

#[test]
fn crashes_modify_killed_during_the_rework_leaves_the_staged_round_as_it_was() {
    const FEEDBACK: &str = "add a rollout section";
    let mut tally: BTreeMap<String, usize> = BTreeMap::new();
    for seed in seeds(6) {
        let mut rng = Rng::new(seed);
        let cache = rng.coin();
        // Which phase of the rework is slow (and killed): its synthesis or its QA.
        let (agent, phase) = if rng.coin() {
            ("lead-synthesizer-a", "synthesis")
        } else {
            ("main-agent", "qa")
        };
        let context = format!(
            "cache {}, slow {phase}, seed {seed} (replay: CRASH_SEED={seed})",
            on(cache)
        );
        eprintln!("crashes: modify, {context}");
        let mut repo = TestRepo::with_approved_spec().set("timeouts", phase, "\"15s\"");
        if !cache {
            for phase in ["agent", "review", "synthesis", "qa"] {
                repo = repo.set("cache", phase, "\"0s\"");
            }
        }
        let run = repo.run_plan_to_gate();
        let staged_dir = repo.run_dir(&run).join("plan/staged");
        let staged = tree(&staged_dir);
        assert!(staged.contains_key("plan.md"), "{context}");

        // The rework's `agent` in `phase` takes 5 s; the kill comes while it runs.
        let repo = repo.behaviour(agent, "started-then-sleep 5");
        let args = ["modify", run.as_str(), "--feedback", FEEDBACK, "--no-input"];
        let mut modify = repo.spawn(&args);
        repo.wait_until_started(agent, phase);
        let delay = Duration::from_millis(rng.below(400));
        let ending = kill_after(&mut modify, delay);
        assert!(
            matches!(ending, Ending::Killed { .. }),
            "modify ended before the kill: {ending:?}; {context}"
        );
        // The fake agents die with stagegate; their background sleeps do not.
        std::thread::sleep(Duration::from_millis(100));
        repo.kill_leftover_sleep(agent, phase);
        *tally.entry(format!("killed during {phase}")).or_default() += 1;

        let status = repo.run_status(&run);
        assert_eq!(
            gate_state(&status, "plan"),
            "pending",
            "{context}: {status:#}"
        );
        assert_eq!(
            decision_kinds(&status),
            Vec::<String>::new(),
            "a decision was recorded; {context}: {status:#}"
        );
        assert_eq!(
            status["gates"][0]["round"].as_u64().unwrap_or(1),
            1,
            "{context}: {status:#}"
        );
        assert!(
            tree(&staged_dir) == staged,
            "the staged artifacts changed after a killed modification; {context}: now {:?}, before {:?}",
            tree(&staged_dir).keys(),
            staged.keys()
        );

        // Modifying again, with fast agents, reworks the set and waits at the gate again.
        let repo = repo.behaviour(agent, "sleep 0.05");
        repo.run(&args).expect_code(EXIT_AWAITING_DECISION);
        let reworked = tree(&staged_dir);
        assert!(reworked != staged, "the rework changed nothing; {context}");
        assert!(
            reworked.keys().all(|name| !name.starts_with('.')),
            "{context}: {:?}",
            reworked.keys()
        );
        let status = repo.run_status(&run);
        assert_eq!(gate_state(&status, "plan"), "pending", "{context}");
        assert_eq!(decision_kinds(&status), ["modify"], "{context}: {status:#}");

        repo.run(&["approve", &run]).expect_code(EXIT_DONE);
        let feature = tree(&repo.path(FEATURE));
        for (name, bytes) in &reworked {
            assert!(
                feature.get(name) == Some(bytes),
                "{name} published is not the reworked one; {context}"
            );
        }
        assert_eq!(temporaries(&repo.path(FEATURE)), Vec::<String>::new());
        wait_until(WAIT, "the run to be completed", || {
            (repo.try_run_status(&run)?["run"]["state"] == "completed").then_some(())
        });
    }
    eprintln!("crashes: modify: {tally:?}");
}
