//! An agent's whole tree dies with its attempt and with stagegate, whatever ends them: children,
//! grandchildren, orphans re-parented away from the agent, and processes in a session of their own
//! (`setsid`), which no process group reaches. The fake agent's `fork-tree` behaviour starts such
//! a tree and records its pids.

use std::time::Duration;

use crate::harness::{TestRepo, kill_9, poll, process_alive, wait_until};

/// The plan agents that start trees; `requirements-analyst` stays fast.
const TREE_AGENTS: [&str; 3] = [
    "solution-architect",
    "risk-compliance-analyst",
    "estimation-scope-analyst",
];

/// The pids of the tree `agent` started in `phase`, once all are recorded.
fn tree_pids(repo: &TestRepo, agent: &str, phase: &str) -> Vec<u32> {
    let path = repo.fake_dir.join(format!("{agent}.{phase}.tree"));
    wait_until(
        Duration::from_secs(30),
        &format!("{agent}'s tree to start"),
        || {
            let text = std::fs::read_to_string(&path).ok()?;
            let pids: Vec<u32> = text
                .lines()
                .filter_map(|line| line.trim().parse().ok())
                .collect();
            (pids.len() == 7).then_some(pids)
        },
    )
}

/// The processes of `pids` still alive `limit` from now (at once if none is), killed so that a
/// failing test leaves nothing behind.
fn survivors_after(pids: &[u32], limit: Duration) -> Vec<u32> {
    let gone = poll(limit, || {
        pids.iter().all(|pid| !process_alive(*pid)).then_some(())
    });
    if gone.is_some() {
        return Vec::new();
    }
    let alive: Vec<u32> = pids
        .iter()
        .copied()
        .filter(|pid| process_alive(*pid))
        .collect();
    for pid in &alive {
        let _ = std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status();
    }
    alive
}

#[test]
fn kill_9_of_stagegate_leaves_no_process_of_any_agent_tree_two_seconds_later() {
    for round in 1..=3 {
        let repo = TREE_AGENTS.iter().fold(
            TestRepo::with_approved_spec()
                .set("adaptive", "enabled", "false")
                .set("timeouts", "default", "\"60s\""),
            |repo, agent| repo.behaviour(agent, "fork-tree"),
        );
        let mut stagegate = repo.spawn(&["run", "plan", "--no-input"]);
        let pids: Vec<u32> = TREE_AGENTS
            .iter()
            .flat_map(|agent| tree_pids(&repo, agent, "agent"))
            .collect();
        let not_started: Vec<u32> = pids
            .iter()
            .copied()
            .filter(|pid| !process_alive(*pid))
            .collect();
        assert!(
            not_started.is_empty(),
            "round {round}: {not_started:?} of {pids:?} ended before the kill"
        );

        kill_9(&mut stagegate);
        let survivors = survivors_after(&pids, Duration::from_secs(2));
        assert!(
            survivors.is_empty(),
            "round {round}: {survivors:?} of the agents' trees {pids:?} outlived stagegate by 2 s"
        );
    }
}

#[test]
fn a_timed_out_agent_is_stopped_with_its_whole_tree_even_another_session() {
    let repo = TestRepo::with_approved_spec()
        .set("timeouts", "simple_check", "\"1s\"")
        .set(
            "agents.solution-architect",
            "timeout_class",
            "\"simple_check\"",
        )
        .set("agents.solution-architect", "retries", "0")
        .behaviour("solution-architect", "fork-tree");
    repo.run_plan_to_gate();
    let pids = tree_pids(&repo, "solution-architect", "agent");
    // The attempt ended only once its tree was gone; a moment for the kernel to say so.
    let survivors = survivors_after(&pids, Duration::from_millis(500));
    assert!(
        survivors.is_empty(),
        "{survivors:?} of the timed-out agent's tree {pids:?} outlived its attempt"
    );
}
