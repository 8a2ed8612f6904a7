//! Durability: a run killed with SIGKILL resumes without redoing what it had finished; a run
//! waiting at its gate survives other commands; identical calls are answered from the cache
//! (and are not once the cache is refreshed, expired, cleared or the inputs changed); one active
//! run per feature and stage; the history (`runs`, `show`); damaged state is reported, never
//! repaired by overwriting.

use std::time::Duration;

use serde_json::Value;

use crate::harness::{
    Call, EXIT_AWAITING_DECISION, EXIT_DONE, EXIT_INPUT_MISSING, EXIT_INTERNAL, EXIT_USAGE,
    FEATURE, PLAN_AGENTS, TestRepo, kill_9, process_alive, wait_for_exit, wait_until,
};

/// The plan agents that take a while in the kill tests; `requirements-analyst` stays fast.
const SLOW_AGENTS: [&str; 3] = [
    "solution-architect",
    "risk-compliance-analyst",
    "estimation-scope-analyst",
];

/// How long to wait for something a background run does (it takes a few seconds at most).
const WAIT: Duration = Duration::from_secs(30);

/// Who a call asked: (phase, agent, artifact or `-`).
type Who = (String, String, String);

fn who(call: &Call) -> Who {
    (
        call.key.phase.clone(),
        call.key.agent.clone(),
        call.key.artifact.clone(),
    )
}

/// The `cache_hit` events among `--json` events, as who was answered from the cache.
fn cache_hits(events: &[Value]) -> Vec<Who> {
    let mut hits: Vec<Who> = events
        .iter()
        .filter(|event| event["event"] == "cache_hit")
        .map(|event| {
            (
                event["phase"].as_str().unwrap_or_default().to_owned(),
                event["agent"].as_str().unwrap_or_default().to_owned(),
                event["artifact"].as_str().unwrap_or("-").to_owned(),
            )
        })
        .collect();
    hits.sort();
    hits
}

/// Who the calls asked, sorted.
fn asked(calls: &[Call]) -> Vec<Who> {
    let mut asked: Vec<Who> = calls.iter().map(who).collect();
    asked.sort();
    asked
}

/// The entry of `run_id` in `status --json`.
fn run_entry(status: &Value, run_id: &str) -> Value {
    status["runs"]
        .as_array()
        .expect("status --json has runs")
        .iter()
        .find(|run| run["id"] == run_id)
        .cloned()
        .unwrap_or_else(|| panic!("no run {run_id} in {status:#}"))
}

/// The last outcome of `agent` in `phase` in `status RUN --json`.
fn outcome_of(status: &Value, phase: &str, agent: &str) -> Option<String> {
    status["agents"]
        .as_array()?
        .iter()
        .find(|summary| summary["phase"] == phase && summary["agent"] == agent)
        .and_then(|summary| summary["outcome"].as_str())
        .map(str::to_owned)
}

fn gate_state(status: &Value, stage: &str) -> Option<String> {
    status["gates"]
        .as_array()?
        .iter()
        .find(|gate| gate["stage"] == stage)
        .and_then(|gate| gate["state"].as_str())
        .map(str::to_owned)
}

/// The id of the only run, once a background `run` has recorded it.
fn wait_for_the_run(repo: &TestRepo) -> String {
    wait_until(WAIT, "the run to be recorded", || {
        repo.try_status()?["runs"][0]["id"]
            .as_str()
            .map(str::to_owned)
    })
}

/// A repository whose slow agents run until the test kills stagegate (they would answer after
/// 5 s, well inside their timeout); the adaptive rules are off so that the plan stage runs its 3
/// agents at once on any machine.
fn repo_with_slow_agents() -> TestRepo {
    SLOW_AGENTS.iter().fold(
        TestRepo::with_approved_spec()
            .set("adaptive", "enabled", "false")
            .set("timeouts", "default", "\"15s\""),
        |repo, agent| repo.behaviour(agent, "started-then-sleep 5"),
    )
}

/// After `kill -9 stagegate`: its agents die with it, their whole trees too (each agent's
/// supervisor kills what it adopted; `orphans.rs` checks that). Ending the fake agent's
/// background `sleep` here as well is only a safety net for this test's cleanup.
fn agents_die_with_stagegate(repo: &TestRepo, agents: &[&str], phase: &str, pids: &[u32]) {
    for (agent, pid) in agents.iter().zip(pids) {
        wait_until(
            Duration::from_secs(10),
            &format!("{agent} (pid {pid}) to die with the killed stagegate"),
            || (!process_alive(*pid)).then_some(()),
        );
        repo.kill_leftover_sleep(agent, phase);
    }
}

#[test]
fn a_run_killed_during_its_agents_resumes_without_calling_the_finished_ones_again() {
    let repo = repo_with_slow_agents();
    let mut stagegate = repo.spawn(&["run", "plan", "--no-input"]);
    let run = wait_for_the_run(&repo);
    // The fast agent's answer is recorded (and cached) before the kill.
    wait_until(WAIT, "requirements-analyst's answer to be recorded", || {
        let status = repo.try_run_status(&run)?;
        (outcome_of(&status, "agent", "requirements-analyst")? == "ok").then_some(())
    });
    let pids: Vec<u32> = SLOW_AGENTS
        .iter()
        .map(|agent| repo.wait_until_started(agent, "agent"))
        .collect();
    kill_9(&mut stagegate);
    agents_die_with_stagegate(&repo, &SLOW_AGENTS, "agent", &pids);

    // The run's lock holder is dead: the run is interrupted, and says how to go on.
    assert_eq!(
        run_entry(&repo.status(), &run)["state"],
        "interrupted",
        "{:#}",
        repo.status()
    );
    let status = repo.run_status(&run);
    assert_eq!(status["run"]["state"], "interrupted", "{status:#}");
    assert_eq!(
        status["commands"],
        serde_json::json!([format!("stagegate resume {run}")]),
        "{status:#}"
    );
    repo.run(&["status"])
        .expect_code(EXIT_DONE)
        .stdout_has(&format!("interrupted run {run}"))
        .stdout_has(&format!("stagegate resume {run}"));
    let before = repo.calls();
    for agent in SLOW_AGENTS {
        let calls = before.of_agent("agent", agent);
        assert_eq!(calls.len(), 1, "{agent}: {before:#?}");
        assert_eq!(calls[0].end, None, "{agent} finished before the kill");
    }
    assert!(before.phase("review").is_empty(), "{before:#?}");

    // Resumed (the slow agents are quick now): the finished agent's answer comes from the
    // cache, the unfinished agents run again, and the run stops at its gate.
    let repo = SLOW_AGENTS
        .iter()
        .fold(repo, |repo, agent| repo.behaviour(agent, "sleep 0.05"));
    let resumed = repo
        .run(&["resume", &run, "--no-input", "--json"])
        .expect_code(EXIT_AWAITING_DECISION);
    let hits = cache_hits(&resumed.json_lines());
    assert_eq!(
        hits,
        vec![(
            "agent".to_owned(),
            "requirements-analyst".to_owned(),
            "-".to_owned()
        )],
        "{resumed:?}"
    );
    let calls = repo.calls();
    assert_eq!(
        calls.of_agent("agent", "requirements-analyst").len(),
        1,
        "requirements-analyst was called again: {calls:#?}"
    );
    for agent in SLOW_AGENTS {
        let runs = calls.of_agent("agent", agent);
        assert_eq!(runs.len(), 2, "{agent}: {calls:#?}");
        assert_eq!(runs[1].status.as_deref(), Some("ok"), "{agent}: {calls:#?}");
    }
    assert_eq!(calls.phase("review").len(), 1, "{calls:#?}");
    assert_eq!(calls.phase("qa").len(), 1, "{calls:#?}");

    let shown = repo.run(&["show", &run]).expect_code(EXIT_DONE);
    let analyst = shown
        .stdout
        .lines()
        .find(|line| line.contains("requirements-analyst"))
        .unwrap_or_else(|| panic!("show lists no requirements-analyst: {shown:?}"));
    assert!(analyst.contains("cached"), "{shown:?}");
    let status = repo.run_status(&run);
    assert_eq!(status["run"]["state"], "awaiting_decision", "{status:#}");
    assert_eq!(gate_state(&status, "plan").as_deref(), Some("pending"));
    assert!(repo.run_dir(&run).join("plan/staged/plan.md").is_file());
    assert_eq!(repo.run_count(), 1, "the resume started another run");
}

#[test]
fn a_run_killed_during_qa_resumes_with_qa_alone() {
    let repo = TestRepo::with_approved_spec()
        .set("timeouts", "qa", "\"15s\"")
        .behaviour("main-agent", "started-then-sleep 5");
    let mut stagegate = repo.spawn(&["run", "plan", "--no-input"]);
    let qa = repo.wait_until_started("main-agent", "qa");
    let run = wait_for_the_run(&repo);
    kill_9(&mut stagegate);
    agents_die_with_stagegate(&repo, &["main-agent"], "qa", &[qa]);
    assert_eq!(run_entry(&repo.status(), &run)["state"], "interrupted");

    let before = repo.calls();
    assert_eq!(before.phase("agent").len(), 4, "{before:#?}");
    assert_eq!(before.phase("review").len(), 1, "{before:#?}");
    assert!(!before.synthesis_of("plan.md").is_empty(), "{before:#?}");
    let qa_calls = before.phase("qa");
    assert_eq!(qa_calls.len(), 1, "{before:#?}");
    assert_eq!(qa_calls[0].end, None, "QA finished before the kill");

    let repo = repo.behaviour("main-agent", "sleep 0.05");
    let resumed = repo
        .run(&["resume", &run, "--no-input", "--json"])
        .expect_code(EXIT_AWAITING_DECISION);
    // Only QA ran again; every earlier phase was answered from what the run had finished.
    let after = repo.calls();
    let new_calls = &after.0[before.0.len()..];
    assert_eq!(
        asked(new_calls),
        vec![("qa".to_owned(), "main-agent".to_owned(), "-".to_owned())],
        "{after:#?}"
    );
    assert_eq!(new_calls[0].status.as_deref(), Some("ok"));
    let finished: Vec<Who> = before
        .0
        .iter()
        .filter(|call| call.key.phase != "qa")
        .map(who)
        .collect();
    let mut finished = finished;
    finished.sort();
    assert_eq!(cache_hits(&resumed.json_lines()), finished, "{resumed:?}");

    let status = repo.run_status(&run);
    assert_eq!(gate_state(&status, "plan").as_deref(), Some("pending"));
    assert_eq!(
        outcome_of(&status, "qa", "main-agent").as_deref(),
        Some("ok")
    );
    for artifact in ["plan.md", "planning-summary.md"] {
        assert!(
            repo.run_dir(&run)
                .join("plan/staged")
                .join(artifact)
                .is_file(),
            "{artifact} is not staged"
        );
    }
}

/// Without a terminal, `run` (even without `--no-input`) stops at the gate; the run waits there
/// through any number of `status` and undecided `resume` calls, and goes on after an approval
/// from another process.
#[test]
fn a_run_waiting_at_its_gate_survives_other_commands_and_goes_on_once_approved() {
    let repo = TestRepo::with_approved_spec();
    let stopped = repo
        .run(&["run", "plan", "prep"])
        .expect_code(EXIT_AWAITING_DECISION)
        .stderr_has("Planning artifacts synthesized. Approve to proceed?");
    let run = stopped.run_id();
    let calls = repo.calls().0.len();

    for _ in 0..3 {
        repo.run(&["status"])
            .expect_code(EXIT_DONE)
            .stdout_has(&format!("waiting: run {run} at the plan gate"));
        repo.run(&["resume", &run, "--no-input"])
            .expect_code(EXIT_AWAITING_DECISION)
            .stderr_has("Planning artifacts synthesized. Approve to proceed?")
            .stderr_has(&format!("stagegate approve {run}"));
        // No terminal: the same as --no-input.
        repo.run(&["resume", &run])
            .expect_code(EXIT_AWAITING_DECISION);
        let status = repo.run_status(&run);
        assert_eq!(gate_state(&status, "plan").as_deref(), Some("pending"));
        assert_eq!(status["run"]["state"], "awaiting_decision", "{status:#}");
        assert_eq!(
            run_entry(&repo.status(), &run)["pending_gate"]["stage"],
            "plan"
        );
    }
    assert_eq!(
        repo.calls().0.len(),
        calls,
        "an undecided resume re-ran work"
    );
    assert!(!repo.exists(&format!("{FEATURE}/plan.md")));
    assert_eq!(repo.run_count(), 1);

    repo.run(&["approve", &run]).expect_code(EXIT_DONE);
    assert!(repo.exists(&format!("{FEATURE}/plan.md")));
    repo.run(&["resume", &run])
        .expect_code(EXIT_AWAITING_DECISION)
        .stderr_has("Implementation plan ready. Approve to proceed?");
    let all = repo.calls();
    assert!(
        all.0[calls..].iter().all(|call| call.key.stage == "prep"),
        "the plan stage ran again: {all:#?}"
    );
    assert_eq!(
        all.0[calls..]
            .iter()
            .filter(|call| call.key.phase == "agent")
            .count(),
        4,
        "{all:#?}"
    );
    let status = repo.run_status(&run);
    assert_eq!(gate_state(&status, "plan").as_deref(), Some("approved"));
    assert_eq!(gate_state(&status, "prep").as_deref(), Some("pending"));
    assert_eq!(status["run"]["current_stage"], "prep", "{status:#}");
}

#[test]
fn an_unchanged_rerun_calls_no_agent_and_reports_cache_hits() {
    let repo = TestRepo::with_approved_spec();
    let first = repo.run_plan_to_gate();
    let first_calls = repo.calls();
    let count = first_calls.0.len();

    // The first run's gate is still pending: nothing about it changes plan's inputs.
    let second = repo
        .run(&["run", "plan", "--no-input", "--json"])
        .expect_code(EXIT_AWAITING_DECISION);
    assert_eq!(repo.calls().0.len(), count, "an agent was called again");
    assert_eq!(
        cache_hits(&second.json_lines()),
        asked(&first_calls.0),
        "every call of the first run is a cache hit"
    );
    let second_run = second.json_lines()[0]["run_id"]
        .as_str()
        .expect("run_started names the run")
        .to_owned();
    assert_ne!(second_run, first);
    for artifact in ["plan.md", "planning-summary.md"] {
        assert_eq!(
            std::fs::read(repo.run_dir(&second_run).join("plan/staged").join(artifact))
                .expect("staged by the second run"),
            std::fs::read(repo.run_dir(&first).join("plan/staged").join(artifact))
                .expect("staged by the first run"),
            "{artifact} differs"
        );
    }

    // The second run superseded the first run's gate: one pending gate per feature and stage.
    repo.run(&["reject", &first, "--reason", "superseded"])
        .expect_code(crate::harness::EXIT_ALREADY_DECIDED);
    // Approving publishes plan.md, which the next plan run reads as the feature's existing
    // plan (`existing/plan.md`): that run asks its agents again; one more, unchanged, does not,
    // and its progress lines say which answers were cached.
    repo.run(&["approve", &second_run]).expect_code(EXIT_DONE);
    assert!(repo.exists(&format!("{FEATURE}/plan.md")));
    repo.run(&["run", "plan", "--no-input"])
        .expect_code(EXIT_AWAITING_DECISION);
    let count = repo.calls().0.len();
    let third = repo
        .run(&["run", "plan", "--no-input"])
        .expect_code(EXIT_AWAITING_DECISION);
    assert_eq!(repo.calls().0.len(), count, "an agent was called again");
    for agent in PLAN_AGENTS {
        assert!(
            third
                .stderr
                .lines()
                .any(|line| line.contains(agent) && line.contains("(cached)")),
            "no cached progress line for {agent}: {third:?}"
        );
    }
}

/// A first run to its gate, then `setup` (may edit the repository), then a second `run plan`
/// with `args`: returns the first run's calls and the second run's calls and events.
fn rerun(
    repo: &TestRepo,
    setup: impl FnOnce(&TestRepo),
    args: &[&str],
) -> (Vec<Call>, Vec<Call>, Vec<Value>) {
    repo.run_plan_to_gate();
    let first = repo.calls().0;
    setup(repo);
    let mut command = vec!["run", "plan", "--no-input", "--json"];
    command.extend_from_slice(args);
    let outcome = repo.run(&command).expect_code(EXIT_AWAITING_DECISION);
    let second = repo.calls().0[first.len()..].to_vec();
    (first, second, outcome.json_lines())
}

/// Every call of the first run was made again, and nothing came from the cache.
fn everything_ran_again(first: &[Call], second: &[Call], events: &[Value]) {
    assert_eq!(asked(second), asked(first), "{second:#?}");
    assert!(
        cache_hits(events).is_empty(),
        "cache hits: {:?}",
        cache_hits(events)
    );
}

#[test]
fn an_edited_spec_makes_every_agent_run_again() {
    let repo = TestRepo::with_approved_spec();
    let (first, second, events) = rerun(
        &repo,
        |repo| {
            let spec = repo.read(&format!("{FEATURE}/spec.md"));
            repo.write(
                &format!("{FEATURE}/spec.md"),
                &format!("{spec}\n- **FR-099**: The system MUST log every export.\n"),
            );
            // The edited spec needs approving first.
            repo.run(&["run", "plan", "--no-input"])
                .expect_code(EXIT_INPUT_MISSING);
            repo.run(&["approve", "spec"]).expect_code(EXIT_DONE);
        },
        &[],
    );
    everything_ran_again(&first, &second, &events);
}

#[test]
fn refresh_ignores_the_cache() {
    let repo = TestRepo::with_approved_spec();
    let (first, second, events) = rerun(&repo, |_| {}, &["--refresh"]);
    everything_ran_again(&first, &second, &events);
}

#[test]
fn expired_answers_are_not_reused() {
    let repo = TestRepo::with_approved_spec()
        .set("cache", "agent", "\"1ms\"")
        .set("cache", "review", "\"1ms\"")
        .set("cache", "synthesis", "\"1ms\"")
        .set("cache", "qa", "\"1ms\"");
    let (first, second, events) = rerun(&repo, |_| {}, &[]);
    everything_ran_again(&first, &second, &events);
}

#[test]
fn cache_clear_forgets_every_answer() {
    let repo = TestRepo::with_approved_spec();
    let (first, second, events) = rerun(
        &repo,
        |repo| {
            repo.run(&["cache", "clear"])
                .expect_code(EXIT_DONE)
                .stderr_has("cleared the cache");
        },
        &[],
    );
    everything_ran_again(&first, &second, &events);
}

#[test]
fn a_second_run_of_a_stage_is_refused_while_the_first_runs() {
    let repo = PLAN_AGENTS.iter().fold(
        TestRepo::with_approved_spec().set("adaptive", "enabled", "false"),
        |repo, agent| repo.behaviour(agent, "started-then-sleep 2"),
    );
    // No --no-input and no terminal: it stops at the gate by itself.
    let args = ["run", "plan"];
    let first_process = repo.spawn(&args);
    repo.wait_until_started("requirements-analyst", "agent");
    let first = wait_for_the_run(&repo);

    for command in [&["run", "plan"][..], &["run", "plan", "--no-input"][..]] {
        // PRODUCT.md does not fix this code; stagegate exits 1 (an error, not a usage one).
        let refused = repo
            .run(command)
            .expect_code(EXIT_INTERNAL)
            .stderr_has(&format!("already being run by run {first}"))
            .stderr_has("stagegate status")
            .stderr_has(&format!("`stagegate unlock {first}`"));
        assert!(!refused.stderr.contains("kill"), "{refused:?}");
    }
    let status = repo.status();
    assert_eq!(
        status["runs"].as_array().map(Vec::len),
        Some(1),
        "{status:#}"
    );
    assert_eq!(run_entry(&status, &first)["state"], "running");

    wait_for_exit(first_process, &args, WAIT).expect_code(EXIT_AWAITING_DECISION);
    let second = repo.run_plan_to_gate();
    assert_ne!(second, first);
    assert_eq!(repo.run_count(), 2);
}

#[test]
fn a_killed_runs_lock_does_not_block_a_new_run() {
    let repo = repo_with_slow_agents();
    let mut stagegate = repo.spawn(&["run", "plan", "--no-input"]);
    let pid = repo.wait_until_started("solution-architect", "agent");
    let killed = wait_for_the_run(&repo);
    kill_9(&mut stagegate);
    agents_die_with_stagegate(&repo, &["solution-architect"], "agent", &[pid]);
    for agent in SLOW_AGENTS {
        repo.kill_leftover_sleep(agent, "agent");
    }

    let repo = SLOW_AGENTS
        .iter()
        .fold(repo, |repo, agent| repo.behaviour(agent, "sleep 0.05"));
    let outcome = repo
        .run(&["run", "plan", "--no-input"])
        .expect_code(EXIT_AWAITING_DECISION)
        .stderr_has(&format!("run {killed}"))
        .stderr_has("marked interrupted");
    let new = outcome.run_id();
    assert_ne!(new, killed);
    let status = repo.status();
    assert_eq!(run_entry(&status, &killed)["state"], "interrupted");
    assert_eq!(run_entry(&status, &new)["state"], "awaiting_decision");
}

#[test]
fn runs_lists_states_and_last_decisions_and_show_prints_an_agents_files() {
    let repo = TestRepo::with_approved_spec();
    let first = repo.run_plan_to_gate();
    repo.run(&["reject", &first, "--reason", "too vague"])
        .expect_code(EXIT_DONE);
    let second = repo.run_plan_to_gate();

    let listed = repo.run(&["runs"]).expect_code(EXIT_DONE);
    let line_of = |run: &str| {
        listed
            .stdout
            .lines()
            .find(|line| line.starts_with(run))
            .unwrap_or_else(|| panic!("runs does not list {run}: {listed:?}"))
            .to_owned()
    };
    let line = line_of(&first);
    assert!(
        line.contains("rejected") && line.contains("plan reject: too vague"),
        "{line}"
    );
    assert!(line_of(&second).contains("awaiting_decision"), "{listed:?}");

    repo.run(&["approve", &second, "--note", "ship it"])
        .expect_code(EXIT_DONE);
    let runs = repo.run(&["runs", "--json"]).expect_code(EXIT_DONE).json();
    let entry = |run: &str| {
        runs["runs"]
            .as_array()
            .expect("runs --json has runs")
            .iter()
            .find(|entry| entry["id"] == run)
            .cloned()
            .unwrap_or_else(|| panic!("no {run} in {runs:#}"))
    };
    assert_eq!(entry(&first)["state"], "rejected");
    assert_eq!(entry(&first)["last_decision"], "plan reject: too vague");
    assert_eq!(entry(&first)["decisions"], 1);
    assert_eq!(entry(&second)["state"], "completed");
    let approval = entry(&second)["last_decision"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        approval.starts_with("plan approve") && approval.ends_with(": ship it"),
        "{runs:#}"
    );

    // The prompt the agent received and its output, as the fake agent saw and wrote them.
    let agent = "requirements-analyst";
    let prompt = repo
        .run(&["show", &first, "--agent", agent, "--file", "prompt"])
        .expect_code(EXIT_DONE);
    assert_eq!(
        prompt.stdout,
        repo.prompt_seen("plan", "agent", agent, "-", 1)
    );
    let output = repo
        .run(&["show", &first, "--agent", agent, "--file", "output"])
        .expect_code(EXIT_DONE);
    assert!(
        output.stdout.contains(&format!(
            "Written by the fake agent {agent} in the agent phase"
        )),
        "{output:?}"
    );
    assert_eq!(
        repo.run(&["show", &first, "--agent", agent])
            .expect_code(EXIT_DONE)
            .stdout,
        output.stdout,
        "the output is the default file"
    );
    let listing = repo.run(&["show", &first]).expect_code(EXIT_DONE);
    for name in PLAN_AGENTS.iter().chain(&[
        "lead-reviewer-a",
        "lead-synthesizer-a.plan.md",
        "main-agent",
    ]) {
        assert!(listing.stdout.contains(name), "{name}: {listing:?}");
    }
    repo.run(&["show", &first, "--agent", "no-such-agent"])
        .expect_code(EXIT_USAGE)
        .stderr_has("no-such-agent");
    repo.run(&["show", "no-such-run"])
        .expect_code(EXIT_USAGE)
        .stderr_has("no-such-run");
}

#[test]
fn a_garbage_state_database_is_reported_and_left_alone() {
    let repo = TestRepo::with_approved_spec();
    let database = repo.path(".stagegate/state.db");
    let garbage: Vec<u8> = b"this is not a database\n"
        .iter()
        .copied()
        .cycle()
        .take(8192)
        .chain((0..=255).map(|byte: u8| byte))
        .collect();
    std::fs::write(&database, &garbage).expect("write garbage");
    // Whatever `-wal` and `-shm` files the last command left beside it stay for the first round
    // (SQLite would read a valid first page from that WAL and go on over the garbage); the
    // second round is without them.
    for round in 0..2 {
        if round == 1 {
            for leftover in ["state.db-wal", "state.db-shm"] {
                let _ = std::fs::remove_file(repo.path(&format!(".stagegate/{leftover}")));
            }
        }
        refuses_every_command(&repo, &garbage);
    }
    assert!(repo.calls().0.is_empty(), "an agent ran");
}

/// Every command fails naming `.stagegate/state.db`, which still holds `garbage`, and leaves
/// `.stagegate/` as it was.
fn refuses_every_command(repo: &TestRepo, garbage: &[u8]) {
    let database = repo.path(".stagegate/state.db");
    let listing = || {
        let mut names: Vec<String> = std::fs::read_dir(repo.path(".stagegate"))
            .expect(".stagegate")
            .map(|entry| {
                entry
                    .expect("entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        names.sort();
        names
    };
    let before = listing();
    for args in [
        &["status"][..],
        &["status", "--json"],
        &["runs"],
        &["run", "plan", "--no-input"],
        &["approve", "spec"],
        &["approve"],
        &["reject", "--reason", "x"],
        &["resume", "20260101-000000-0000", "--no-input"],
        &["show", "20260101-000000-0000"],
        &["cache", "clear"],
        &["metrics"],
    ] {
        let outcome = repo
            .run(args)
            .expect_code(EXIT_INTERNAL)
            .stderr_has(".stagegate/state.db")
            .stderr_has("aside");
        assert!(!outcome.stderr.contains("panicked"), "{outcome:?}");
        assert_eq!(
            std::fs::read(&database).expect("state.db"),
            garbage,
            "`stagegate {}` changed state.db",
            args.join(" ")
        );
        assert_eq!(listing(), before, "`stagegate {}`", args.join(" "));
    }
}

#[test]
fn a_deleted_run_directory_makes_approve_fail_cleanly() {
    let repo = TestRepo::with_approved_spec();
    let run = repo.run_plan_to_gate();
    std::fs::remove_dir_all(repo.run_dir(&run)).expect("rm -rf the run directory");

    for args in [&["approve"][..], &["approve", &run]] {
        let outcome = repo
            .run(args)
            .expect_code(EXIT_INTERNAL)
            .stderr_has(&run)
            .stderr_has("deleted");
        assert!(!outcome.stderr.contains("panicked"), "{outcome:?}");
    }
    for artifact in ["plan.md", "planning-summary.md"] {
        assert!(
            !repo.exists(&format!("{FEATURE}/{artifact}")),
            "{artifact} was published"
        );
    }
    let status = repo.run_status(&run);
    assert_eq!(gate_state(&status, "plan").as_deref(), Some("pending"));
    assert_eq!(
        status["decisions"].as_array().map(Vec::len),
        Some(0),
        "{status:#}"
    );
    // Resuming cannot show the gate either, and says why; a rejection still closes it.
    let resumed = repo
        .run(&["resume", &run, "--no-input"])
        .expect_code(EXIT_INTERNAL)
        .stderr_has("changed by hand");
    assert!(!resumed.stderr.contains("panicked"), "{resumed:?}");
    repo.run(&["reject", &run, "--reason", "its files are gone"])
        .expect_code(EXIT_DONE);
    assert_eq!(
        gate_state(&repo.run_status(&run), "plan").as_deref(),
        Some("rejected")
    );
}

/// PRODUCT.md §2: the run keeps what every agent received, an attempt answered from the cache
/// included (its prompt is the one the call would have sent).
#[test]
fn show_prints_the_prompt_of_an_attempt_answered_from_the_cache() {
    let repo = TestRepo::with_approved_spec();
    let first = repo.run_plan_to_gate();
    let second = repo.run_plan_to_gate();
    let prompt_of = |run: &str| {
        repo.run(&[
            "show",
            run,
            "--agent",
            "requirements-analyst",
            "--file",
            "prompt",
        ])
        .expect_code(EXIT_DONE)
        .stdout
    };
    assert_eq!(prompt_of(&second), prompt_of(&first));
}

/// `stagegate.toml` for a stage `wide` of `agents` mock agents, 250 at a time, each answering
/// after 100 ms: wide enough that the recorder commits thousands of rows per batch on its own
/// connection and folds the log into `state.db` beside its commits, slow enough (about 0.8 s of
/// agents for 2,000) to be killed in the middle.
fn wide_stage_config(agents: usize) -> String {
    let ids: Vec<String> = (0..agents).map(|index| format!("\"w{index}\"")).collect();
    let mut config = format!(
        "[defaults]\nbackend = \"m\"\n[backends.m]\nkind = \"mock\"\nlatency = \"100ms\"\n\
         [stages.wide]\nname = \"Wide\"\nagents = [{}]\nreviewer = \"lead-reviewer-a\"\n\
         synthesizer = \"lead-synthesizer-a\"\nqa = \"main-agent\"\nrequired = [\"wide.md\"]\n\
         optional = []\ninputs = [\"spec.md\"]\nquestion = \"Wide?\"\nconcurrency = 250\n",
        ids.join(", ")
    );
    for index in 0..agents {
        config.push_str(&format!(
            "[agents.w{index}]\nrole = \"Analyst {index}\"\ntask = \"Analyse part {index}\"\n"
        ));
    }
    config
}

/// A wide stage killed at points spread over its agents resumes to its gate with every agent
/// answered, each text readable: what the recorder's own connection and the log folded beside
/// its commits leave behind a SIGKILL is a database SQLite opens as it was last committed.
#[test]
fn a_wide_stage_killed_at_spread_points_resumes_to_its_gate_with_every_answer() {
    const AGENTS: usize = 2_000;
    for delay_ms in [50, 150, 300] {
        let repo = TestRepo::with_approved_spec();
        repo.write("stagegate.toml", &wide_stage_config(AGENTS));
        let mut stagegate = repo.spawn(&["run", "wide", "--no-input"]);
        let run = wait_for_the_run(&repo);
        std::thread::sleep(Duration::from_millis(delay_ms));
        kill_9(&mut stagegate);

        repo.run(&["resume", &run, "--no-input"])
            .expect_code(EXIT_AWAITING_DECISION);
        // An answer recorded before the kill is replayed on resume (`cached`); the others ran.
        let answered_attempt = |outcome: &str| outcome == "ok" || outcome == "cached";
        let attempts = repo.attempts(&run);
        let answered: std::collections::BTreeSet<&str> = attempts
            .iter()
            .filter(|attempt| attempt.phase == "agent" && answered_attempt(&attempt.outcome))
            .map(|attempt| attempt.agent.as_str())
            .collect();
        assert_eq!(answered.len(), AGENTS, "killed after {delay_ms} ms");
        for agent in ["w0", "w999", "w1999"] {
            let last = attempts
                .iter()
                .filter(|attempt| attempt.agent == agent && answered_attempt(&attempt.outcome))
                .map(|attempt| attempt.attempt)
                .max()
                .unwrap_or_else(|| panic!("{agent} never answered (killed after {delay_ms} ms)"));
            let output = repo
                .attempt_text(&run, "wide", agent, last, "output")
                .unwrap_or_else(|| panic!("{agent} has no output (killed after {delay_ms} ms)"));
            assert!(output.contains(agent), "{agent}: {output}");
        }
    }
}
