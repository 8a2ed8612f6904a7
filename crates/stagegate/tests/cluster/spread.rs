//! The agents of one stage spread over the workers: each attempt is its own workflow, which any
//! worker of the task queue runs, and the run's directory says which worker ran each.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::Value;

use crate::dev_server::{DevServer, Worker};
use crate::harness::{EXIT_AWAITING_DECISION, EXIT_DONE, FEATURE, TestRepo, poll, wait_for_exit};

/// Role agents in the stage: with two workers taking attempts as they come, the chance that
/// one worker takes all of them is 2^-(AGENTS-1).
pub const AGENTS: usize = 16;

pub fn agent_names(count: usize) -> Vec<String> {
    (1..=count)
        .map(|index| format!("analyst-{index:02}"))
        .collect()
}

/// `repo` with a plan stage of role agents `names`, all running at once.
pub fn with_agents(mut repo: TestRepo, names: &[String]) -> TestRepo {
    let list: Vec<String> = names.iter().map(|name| format!("\"{name}\"")).collect();
    repo = repo
        .set("stages.plan", "concurrency", &names.len().to_string())
        .set("stages.plan", "agents", &format!("[{}]", list.join(", ")));
    for name in names {
        repo = repo.set(&format!("agents.{name}"), "role", "\"Analyst\"");
    }
    repo
}

/// A repository whose plan stage has `AGENTS` role agents, and every agent (reviewer,
/// synthesizer and QA too) a mock that answers after `latency`.
fn mock_stage_repo(latency: &str) -> TestRepo {
    let repo = TestRepo::with_approved_spec()
        .set("backends.spread", "kind", "\"mock\"")
        .set("backends.spread", "latency", &format!("\"{latency}\""))
        .set("defaults", "backend", "\"spread\"");
    with_agents(repo, &agent_names(AGENTS))
}

/// Which worker ran each attempt: by (phase, agent, artifact or `-`, attempt).
pub type AttemptWorkers = BTreeMap<(String, String, String, u64), String>;

/// `stagegate run plan` on the cluster of `server`, to its gate: the run's id.
pub fn run_plan_to_gate_on(repo: &TestRepo, server: &DevServer) -> String {
    repo.run(&["run", "plan", "--no-input", "--temporal", &server.address])
        .expect_code(EXIT_AWAITING_DECISION)
        .run_id()
}

/// The workers that ran the attempts of the phases `keep` keeps.
pub fn workers_where(workers: &AttemptWorkers, keep: impl Fn(&str) -> bool) -> BTreeSet<&str> {
    workers
        .iter()
        .filter(|((phase, ..), _)| keep(phase))
        .map(|(_, worker)| worker.as_str())
        .collect()
}

/// The run's `attempt-workers.jsonl`: the worker of each attempt, by (phase, agent, artifact,
/// attempt).
pub fn attempt_workers(repo: &TestRepo, run_id: &str) -> AttemptWorkers {
    let path = repo.run_dir(run_id).join("attempt-workers.jsonl");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("{} cannot be read: {error}", path.display()));
    text.lines()
        .map(|line| {
            let row: Value = serde_json::from_str(line).expect("a JSON line");
            let text = |key: &str| row[key].as_str().unwrap_or("-").to_owned();
            let key = (
                text("phase"),
                text("agent"),
                text("artifact"),
                row["attempt"].as_u64().expect("an attempt number"),
            );
            (key, text("worker"))
        })
        .collect()
}

#[test]
#[ignore = "in a CI run of 2026-12-03 one of the two workers ran none of the 16 attempts (the other test here stalled in two runs); both look like a worker that is not polling when the run starts: to be found before they run in CI again; run it with --ignored"]
fn both_workers_run_attempts_of_one_stage_and_the_run_says_which_ran_each() {
    let repo = mock_stage_repo("500ms");
    let server = DevServer::start();
    let _one = Worker::named(&repo, &server, "worker-one");
    let _two = Worker::named(&repo, &server, "worker-two");
    let run_id = run_plan_to_gate_on(&repo, &server);

    let workers = attempt_workers(&repo, &run_id);
    let role_attempts = workers.keys().filter(|(phase, ..)| phase == "agent");
    assert_eq!(role_attempts.count(), AGENTS, "{workers:#?}");
    assert_eq!(
        workers_where(&workers, |phase| phase == "agent"),
        BTreeSet::from(["worker-one", "worker-two"]),
        "both workers should have run role agents: {workers:#?}"
    );
    for phase in ["review", "synthesis", "qa"] {
        assert!(
            workers.keys().any(|(recorded, ..)| recorded == phase),
            "no {phase} attempt recorded with its worker: {workers:#?}"
        );
    }
    // The store recorded every attempt, as for a run in process.
    let recorded = repo
        .attempts(&run_id)
        .into_iter()
        .filter(|row| row.phase == "agent")
        .count();
    assert_eq!(recorded, AGENTS);
    repo.run(&["approve", &run_id]).expect_code(EXIT_DONE);
    assert!(repo.exists(&format!("{FEATURE}/plan.md")));
}

/// Role agents of the failover test: half answer at once, half take `SLOW_SECONDS`: long
/// enough that the first slow one is still running when a loaded machine has seen the quick
/// ones reported (the worker to kill is the one running it).
const FAILOVER_AGENTS: usize = 8;
const SLOW_SECONDS: u32 = 30;

#[test]
#[ignore = "stalled in both cold CI runs of 2026-12-03 (waiting for the agents, then for the run to end), while it passed alone, in its suite and under CPU load afterwards: to be found before it runs in CI again; run it with --ignored"]
fn a_killed_worker_s_attempts_finish_on_the_other_and_no_finished_attempt_runs_again() {
    let names = agent_names(FAILOVER_AGENTS);
    let (quick, slow) = names.split_at(FAILOVER_AGENTS / 2);
    let mut repo =
        with_agents(TestRepo::with_approved_spec(), &names).set("timeouts", "default", "\"60s\"");
    for agent in slow {
        repo = repo.behaviour(agent, &format!("sleep {SLOW_SECONDS}"));
    }
    let server = DevServer::start();
    let mut workers = [
        Worker::named(&repo, &server, "worker-one"),
        Worker::named(&repo, &server, "worker-two"),
    ];
    let names = ["worker-one", "worker-two"];
    let args = ["run", "plan", "--no-input", "--temporal", &server.address];
    let run = repo.spawn(&args);

    wait_for_quick_and_slow(&repo, &server, quick, slow);
    // The worker running the first slow agent dies: at least that agent is lost mid-answer.
    let agent_pids = processes_of_agent(&repo, &slow[0]);
    let victim = (0..workers.len())
        .find(|&index| {
            let worker = workers[index].child.id();
            agent_pids
                .iter()
                .any(|&pid| ancestors(pid).contains(&worker))
        })
        .unwrap_or_else(|| panic!("no worker runs {} (pids {agent_pids:?})", slow[0]));
    workers[victim].kill_9();
    let survivor = names[1 - victim];
    // What the killed worker was running starts again on the other, and answers at once.
    for agent in slow {
        std::fs::write(repo.fake_dir.join(format!("{agent}.behaviour")), "\n")
            .expect("rewrite a behaviour");
    }

    let run_id = wait_for_exit(run, &args, Duration::from_secs(150))
        .expect_code(EXIT_AWAITING_DECISION)
        .run_id();
    let calls = repo.calls();
    let recorded = attempt_workers(&repo, &run_id);
    for agent in quick {
        assert_eq!(
            calls.of_agent("agent", agent).len(),
            1,
            "{agent} had finished and ran again: {:#?}",
            calls.0
        );
    }
    let mut run_again = 0;
    for agent in slow {
        let runs = calls.of_agent("agent", agent).len();
        let worker = &recorded[&("agent".to_owned(), agent.clone(), "-".to_owned(), 1)];
        // Killed mid-answer: run again, on the survivor, and recorded there.
        assert!(
            runs == 1 || (runs == 2 && worker == survivor),
            "{agent} ran {runs} times, last on {worker}: {:#?}",
            calls.0
        );
        run_again += usize::from(runs == 2);
    }
    assert!(
        run_again >= 1,
        "the killed worker's agent did not run again: {:#?}",
        calls.0
    );
    // The engine saw one attempt per agent: a lost worker is not a failed attempt.
    let rows = repo.attempts(&run_id);
    let role_rows: Vec<_> = rows.iter().filter(|row| row.phase == "agent").collect();
    assert_eq!(role_rows.len(), FAILOVER_AGENTS, "{rows:#?}");
    assert!(role_rows.iter().all(|row| row.attempt == 1), "{rows:#?}");
    assert!(
        !repo.exists(&format!("{FEATURE}/plan.md")),
        "published before the gate"
    );
    repo.run(&["approve", &run_id]).expect_code(EXIT_DONE);
    assert!(repo.exists(&format!("{FEATURE}/plan.md")));
}

/// Waits until every `quick` fake agent has answered (and its worker has reported the answer
/// to the cluster) and every `slow` one has started; fails the test saying which of those had
/// not happened. Generous, for a loaded CI machine: two cluster tests at once on two cores,
/// each with its server, workers and run.
pub fn wait_for_quick_and_slow<Name: AsRef<str>>(
    repo: &TestRepo,
    server: &DevServer,
    quick: &[Name],
    slow: &[Name],
) {
    let limit = Duration::from_secs(120);
    let mut missing = Vec::new();
    let done = poll(limit, || {
        let calls = repo.calls();
        missing.clear();
        for agent in quick.iter().map(AsRef::as_ref) {
            let finished = calls
                .of_agent("agent", agent)
                .iter()
                .any(|call| call.end.is_some());
            if !finished {
                missing.push(format!("{agent} has not answered"));
            }
        }
        for agent in slow.iter().map(AsRef::as_ref) {
            if calls.of_agent("agent", agent).is_empty() {
                missing.push(format!("{agent} has not started"));
            }
        }
        if missing.is_empty() {
            let completed = server.completed_attempts();
            if completed >= quick.len() as u64 {
                return Some(());
            }
            missing.push(format!("the cluster has completed {completed} attempts"));
        }
        None
    });
    assert!(
        done.is_some(),
        "gave up after {limit:?} waiting for the quick agents to finish and the slow ones to start: {missing:?}"
    );
}

/// The processes of the fake agent `agent` of `repo` now running (found by their environment).
fn processes_of_agent(repo: &TestRepo, agent: &str) -> Vec<u32> {
    let agent_variable = format!("STAGEGATE_AGENT={agent}");
    let fake_dir_variable = format!("FAKE_DIR={}", repo.fake_dir.display());
    let entries = std::fs::read_dir("/proc").expect("/proc is readable");
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            // A process that ended meanwhile, or another user's, is not it.
            let Ok(environment) = std::fs::read(format!("/proc/{pid}/environ")) else {
                return false;
            };
            let variables: Vec<&[u8]> = environment.split(|byte| *byte == 0).collect();
            [&agent_variable, &fake_dir_variable]
                .iter()
                .all(|wanted| variables.contains(&wanted.as_bytes()))
        })
        .collect()
}

/// `pid`'s parent, its parent, … up to init.
fn ancestors(pid: u32) -> Vec<u32> {
    let mut chain = Vec::new();
    let mut current = pid;
    while let Some(parent) = parent_of(current).filter(|parent| *parent > 1) {
        chain.push(parent);
        current = parent;
    }
    chain
}

fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (command) state ppid …`; the command may hold spaces and parentheses.
    let after_command = &stat[stat.rfind(')')? + 1..];
    after_command.split_whitespace().nth(1)?.parse().ok()
}
