//! The stage loop end to end, through the crate's public API, under tokio's paused clock.
//!
//! A scripted backend plays every agent (by id): it answers after a latency, fails its first
//! attempts, fails always, fails for good, hangs until its deadline, or (as QA) asks for rework.
//! It records each call's identity, prompt, deadline and its start and end on tokio's clock, so
//! the tests assert the loop's timing decisions (order of phases, the concurrency limit, backoff,
//! timeouts, the stage deadline) from those instants and the emitted events. Nothing here
//! measures wall-clock speed: the paused clock makes every instant exact.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use stagegate_engine::adaptive::{Adaptation, LiveRules};
use stagegate_engine::backend::{
    AgentOutcome, AgentRequest, Backend, BoxFuture, CallIdentity, Failure, Phase,
};
use stagegate_engine::event::{AttemptStatus, CollectingSink, Event, Verdict};
use stagegate_engine::line_comment::LineComment;
use stagegate_engine::prompt::{NamedText, Prompts};
use stagegate_engine::retry_policy::RetryPolicy;
use stagegate_engine::stage::{StageContext, StageError, StageProduct, rework, run_stage};
use stagegate_engine::stage_plan::{AgentPlan, BackendHandle, StagePlan};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

const SECOND: Duration = Duration::from_secs(1);

/// The plan stage's four role agents (PRODUCT.md §1).
const AGENTS: [&str; 4] = [
    "requirements-analyst",
    "solution-architect",
    "risk-compliance-analyst",
    "estimation-scope-analyst",
];
const REVIEWER: &str = "lead-reviewer-a";
const SYNTHESIZER: &str = "lead-synthesizer-a";
const QA: &str = "main-agent";

/// Feedback the scripted QA gives with `VERDICT: REWORK`.
const QA_FEEDBACK: &str = "plan.md misses FR-002 (export to CSV).";

// ----- the scripted backend ------------------------------------------------------------

/// How one agent answers.
#[derive(Debug, Clone)]
enum Behavior {
    /// Answers `text` after `latency`.
    Succeed { latency: Duration, text: String },
    /// Fails (retryable) its first `failures` calls after `latency` each, then answers.
    FailFirst { failures: u32, latency: Duration },
    /// Fails (retryable) every call after `latency`.
    FailAlways { latency: Duration },
    /// Fails at once with a failure no retry can fix.
    FailPermanent,
    /// Never answers: it waits for its deadline (→ `TimedOut`) or a cancel (→ `Cancelled`).
    Hang,
    /// As QA: `VERDICT: REWORK` on its first `reworks` calls, then `VERDICT: PASS`.
    QaReworkFirst { reworks: u32 },
    /// As QA: `VERDICT: REWORK` every time.
    QaAlwaysRework,
}

/// One call as the backend saw it.
#[derive(Debug, Clone)]
struct CallRecord {
    backend: String,
    identity: CallIdentity,
    prompt: String,
    deadline: Instant,
    started: Instant,
    ended: Instant,
    result: Result<String, Failure>,
}

type CallLog = Arc<Mutex<Vec<CallRecord>>>;

struct ScriptedBackend {
    name: String,
    script: HashMap<String, Behavior>,
    /// Calls so far per agent id, on this backend.
    calls: Mutex<HashMap<String, u32>>,
    log: CallLog,
}

impl Backend for ScriptedBackend {
    fn kind(&self) -> &'static str {
        "scripted"
    }

    fn run(&self, request: AgentRequest) -> BoxFuture<AgentOutcome> {
        let call_index = {
            let mut calls = self.calls.lock().expect("calls lock");
            let count = calls.entry(request.identity.agent.clone()).or_insert(0);
            *count += 1;
            *count - 1
        };
        let behavior = self.script.get(&request.identity.agent).cloned();
        let (latency, answer) = respond(behavior.as_ref(), &request.identity, call_index);
        let log = self.log.clone();
        let backend = self.name.clone();
        Box::pin(async move {
            let started = Instant::now();
            let result = wait(started, latency, &request).await.and(answer);
            log.lock().expect("log lock").push(CallRecord {
                backend,
                identity: request.identity.clone(),
                prompt: request.prompt.to_string(),
                deadline: request.deadline,
                started,
                ended: Instant::now(),
                result: result.clone(),
            });
            AgentOutcome {
                result,
                stderr: Vec::new(),
                usage: None,
            }
        })
    }
}

/// Waits `latency` as the trait requires: never past `request.deadline`, and no longer once
/// `request.cancel` fires.
async fn wait(started: Instant, latency: Duration, request: &AgentRequest) -> Result<(), Failure> {
    let done_at = started + latency;
    tokio::select! {
        biased;
        () = request.cancel.cancelled() => Err(Failure::Cancelled),
        () = tokio::time::sleep_until(done_at.min(request.deadline)) => {
            if done_at > request.deadline {
                let after_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
                Err(Failure::TimedOut { after_ms })
            } else {
                Ok(())
            }
        }
    }
}

/// The latency and answer of call number `call_index` (0-based) of an agent.
fn respond(
    behavior: Option<&Behavior>,
    identity: &CallIdentity,
    call_index: u32,
) -> (Duration, Result<String, Failure>) {
    let failure = || Failure::retryable(format!("scripted failure of {}", identity.agent));
    match behavior {
        None => (SECOND, Ok(default_answer(identity))),
        Some(Behavior::Succeed { latency, text }) => (*latency, Ok(text.clone())),
        Some(Behavior::FailFirst { failures, latency }) if call_index < *failures => {
            (*latency, Err(failure()))
        }
        Some(Behavior::FailFirst { latency, .. }) => (*latency, Ok(default_answer(identity))),
        Some(Behavior::FailAlways { latency }) => (*latency, Err(failure())),
        Some(Behavior::FailPermanent) => (
            Duration::ZERO,
            Err(Failure::permanent("scripted: the program is missing")),
        ),
        Some(Behavior::Hang) => (Duration::from_secs(86_400), Ok("never".to_owned())),
        Some(Behavior::QaReworkFirst { reworks }) if call_index < *reworks => {
            (SECOND, Ok(format!("{QA_FEEDBACK}\nVERDICT: REWORK\n")))
        }
        Some(Behavior::QaReworkFirst { .. }) => (SECOND, Ok(default_answer(identity))),
        Some(Behavior::QaAlwaysRework) => (SECOND, Ok(format!("{QA_FEEDBACK}\nVERDICT: REWORK\n"))),
    }
}

/// What an unscripted agent answers, by phase. The synthesizer skips `data-model.md`.
fn default_answer(identity: &CallIdentity) -> String {
    match identity.phase {
        Phase::Agent => format!(
            "Findings of {}: FR-001 is covered.\nCONFIDENCE: 0.9\n",
            identity.agent
        ),
        Phase::Review => "Review: the agents agree on FR-001.\n".to_owned(),
        Phase::Synthesis => match identity.artifact.as_deref() {
            Some("data-model.md") => "SKIP".to_owned(),
            Some(artifact) => format!("# {artifact}\n\nSynthesized {artifact}.\n"),
            None => "no artifact named".to_owned(),
        },
        Phase::Qa => "No problems found.\nVERDICT: PASS\n".to_owned(),
    }
}

// ----- plans and runs -----------------------------------------------------------------

struct Harness {
    log: CallLog,
    plan: StagePlan,
    context: StageContext,
}

impl Harness {
    /// The plan stage with `agents` role agents, all on one backend named `primary` that
    /// plays `script`.
    fn new(agents: &[&str], script: &[(&str, Behavior)]) -> Self {
        let log = CallLog::default();
        let primary = backend("primary", &log, script);
        let agent_plans = agents
            .iter()
            .map(|id| agent_plan(id, &primary, 30 * SECOND))
            .collect();
        let plan = StagePlan {
            id: "plan".to_owned(),
            name: "Stage A: Planning/Spec".to_owned(),
            question: "Planning artifacts synthesized. Approve to proceed?".to_owned(),
            required: vec!["plan.md".to_owned(), "planning-summary.md".to_owned()],
            optional: vec![
                "research.md".to_owned(),
                "data-model.md".to_owned(),
                "contracts/".to_owned(),
            ],
            inputs: vec!["spec.md".to_owned()],
            summary_artifact: "planning-summary.md".to_owned(),
            agents: agent_plans,
            reviewer: agent_plan(REVIEWER, &primary, 15 * SECOND),
            synthesizer: agent_plan(SYNTHESIZER, &primary, 20 * SECOND),
            qa: agent_plan(QA, &primary, 10 * SECOND),
            concurrency: 3,
            min_success_ratio: 0.75,
            stage_timeout: 120 * SECOND,
            synthesis_iterations: 1,
            output_cap_bytes: 1 << 20,
            kill_grace: 2 * SECOND,
            adaptation: Adaptation::default(),
        };
        let context = StageContext {
            run_id: "run-1".to_owned(),
            repo_root: PathBuf::from("/nonexistent/repo"),
            feature_dir: PathBuf::from("/nonexistent/repo/specs/001-reports"),
            inputs: Arc::new(vec![NamedText {
                name: "spec.md".to_owned(),
                content: "# Reports\n\n- FR-001 the system MUST export reports.\n- FR-002 the \
                          system MUST export them as CSV.\n"
                    .to_owned(),
            }]),
            prompts: Arc::new(Prompts::embedded().expect("embedded templates load")),
            cancel: CancellationToken::new(),
        };
        Harness { log, plan, context }
    }

    /// Another backend that records into the same log.
    fn backend(&self, name: &str, script: &[(&str, Behavior)]) -> BackendHandle {
        backend(name, &self.log, script)
    }

    fn agent_mut(&mut self, id: &str) -> &mut AgentPlan {
        self.plan
            .agents
            .iter_mut()
            .find(|agent| agent.id == id)
            .expect("an agent of the plan")
    }

    async fn run(&self) -> (Result<StageProduct, StageError>, Vec<Event>) {
        let mut sink = CollectingSink::default();
        let result = run_stage(&self.plan, &self.context, &mut sink).await;
        (result, sink.events)
    }

    fn calls(&self) -> Vec<CallRecord> {
        let mut calls = self.log.lock().expect("log lock").clone();
        calls.sort_by_key(|call| call.started);
        calls
    }
}

fn backend(name: &str, log: &CallLog, script: &[(&str, Behavior)]) -> BackendHandle {
    BackendHandle {
        name: name.to_owned(),
        backend: Arc::new(ScriptedBackend {
            name: name.to_owned(),
            script: script
                .iter()
                .map(|(agent, behavior)| ((*agent).to_owned(), behavior.clone()))
                .collect(),
            calls: Mutex::new(HashMap::new()),
            log: log.clone(),
        }),
    }
}

fn agent_plan(id: &str, backend: &BackendHandle, timeout: Duration) -> AgentPlan {
    AgentPlan {
        id: id.to_owned(),
        role: format!("Role {}", id.len()),
        task: "Do the job of this role".to_owned(),
        backend: backend.clone(),
        fallback: None,
        timeout,
        retry: RetryPolicy::new(2, SECOND),
        required: false,
        memory_limit_bytes: 256 << 20,
    }
}

fn succeed(latency: Duration, text: &str) -> Behavior {
    Behavior::Succeed {
        latency,
        text: text.to_owned(),
    }
}

// ----- reading the record -------------------------------------------------------------

fn of_phase(calls: &[CallRecord], phase: Phase) -> Vec<&CallRecord> {
    calls
        .iter()
        .filter(|call| call.identity.phase == phase)
        .collect()
}

/// An agent's calls in the agent phase, by attempt number.
fn attempts_of<'a>(calls: &'a [CallRecord], agent: &str) -> Vec<&'a CallRecord> {
    let mut attempts: Vec<&CallRecord> = calls
        .iter()
        .filter(|call| call.identity.phase == Phase::Agent && call.identity.agent == agent)
        .collect();
    attempts.sort_by_key(|call| call.identity.attempt);
    attempts
}

fn attempt_numbers(calls: &[&CallRecord]) -> Vec<u32> {
    calls.iter().map(|call| call.identity.attempt).collect()
}

fn last_end(calls: &[&CallRecord]) -> Instant {
    calls
        .iter()
        .map(|call| call.ended)
        .max()
        .expect("at least one call")
}

fn first_start(calls: &[&CallRecord]) -> Instant {
    calls
        .iter()
        .map(|call| call.started)
        .min()
        .expect("at least one call")
}

/// The most calls running at one instant; a call that ends at the instant another starts does
/// not overlap it.
fn max_in_flight(calls: &[&CallRecord]) -> usize {
    let mut edges: Vec<(Instant, i32)> = calls
        .iter()
        .flat_map(|call| [(call.started, 1), (call.ended, -1)])
        .collect();
    edges.sort();
    let mut running = 0_i32;
    let mut most = 0_i32;
    for (_, change) in edges {
        running += change;
        most = most.max(running);
    }
    usize::try_from(most).expect("non-negative")
}

/// Whether no two of `calls` overlap in time.
fn one_at_a_time(calls: &[&CallRecord]) -> bool {
    max_in_flight(calls) <= 1
}

/// The stage-level events (attempts and retries left out), by kind.
fn milestones(events: &[Event]) -> Vec<&'static str> {
    events
        .iter()
        .map(Event::kind)
        .filter(|kind| {
            !matches!(
                *kind,
                "attempt_started" | "attempt_finished" | "retry_scheduled" | "fallback_started"
            )
        })
        .collect()
}

fn synthesized(events: &[Event]) -> Vec<(String, u32)> {
    events
        .iter()
        .filter_map(|event| match event {
            Event::ArtifactSynthesized {
                artifact,
                iteration,
                ..
            } => Some((artifact.clone(), *iteration)),
            _ => None,
        })
        .collect()
}

fn verdicts(events: &[Event]) -> Vec<(Verdict, u32)> {
    events
        .iter()
        .filter_map(|event| match event {
            Event::QaVerdict {
                verdict, iteration, ..
            } => Some((*verdict, *iteration)),
            _ => None,
        })
        .collect()
}

fn artifact<'a>(product: &'a StageProduct, name: &str) -> &'a str {
    product
        .artifacts
        .iter()
        .find(|artifact| artifact.name == name)
        .map(|artifact| artifact.content.as_str())
        .unwrap_or_else(|| panic!("artifact {name} in {:?}", product.artifacts))
}

fn owned(names: &[&str]) -> Vec<String> {
    names.iter().map(|name| (*name).to_owned()).collect()
}

// ----- 1. phase order -----------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn phases_run_in_order_and_required_artifacts_are_synthesized_first() {
    let harness = Harness::new(
        &AGENTS,
        &[
            (
                AGENTS[0],
                succeed(4 * SECOND, "requirements: FR-001, FR-002"),
            ),
            (AGENTS[1], succeed(SECOND, "architecture: one exporter")),
            (AGENTS[2], succeed(2 * SECOND, "risks: none")),
            (AGENTS[3], succeed(3 * SECOND, "estimate: 3 days")),
        ],
    );
    let t0 = Instant::now();
    let (result, events) = harness.run().await;
    let product = result.expect("the stage reaches its gate");
    let calls = harness.calls();

    let agents = of_phase(&calls, Phase::Agent);
    let reviews = of_phase(&calls, Phase::Review);
    let syntheses = of_phase(&calls, Phase::Synthesis);
    let checks = of_phase(&calls, Phase::Qa);
    assert_eq!(agents.len(), 4);
    assert_eq!(reviews.len(), 1);
    assert_eq!(checks.len(), 1);

    // Three start at once; the fourth takes the first free permit (after 1 s) and ends at 4 s;
    // the review starts the moment the last agent ends.
    assert_eq!(agents.iter().filter(|call| call.started == t0).count(), 3);
    assert_eq!(last_end(&agents), t0 + 4 * SECOND);
    assert_eq!(reviews[0].started, last_end(&agents));
    assert!(
        syntheses
            .iter()
            .all(|call| call.started >= reviews[0].ended)
    );
    // The artifacts are synthesized concurrently under the stage's limit (3), QA after all.
    assert_eq!(max_in_flight(&syntheses), 3);
    assert!(checks[0].started >= last_end(&syntheses));

    // Required artifacts first, then the optional files; never the directory `contracts/`.
    let asked: Vec<&str> = syntheses
        .iter()
        .map(|call| call.identity.artifact.as_deref().expect("an artifact"))
        .collect();
    assert_eq!(
        asked,
        [
            "plan.md",
            "planning-summary.md",
            "research.md",
            "data-model.md"
        ]
    );
    // The synthesizer answered SKIP for data-model.md: not an artifact.
    let names: Vec<&str> = product
        .artifacts
        .iter()
        .map(|artifact| artifact.name.as_str())
        .collect();
    assert_eq!(names, ["plan.md", "planning-summary.md", "research.md"]);

    // Each phase sees the one before it.
    for text in [
        "requirements: FR-001, FR-002",
        "architecture: one exporter",
        "risks: none",
        "estimate: 3 days",
    ] {
        assert!(reviews[0].prompt.contains(text), "{}", reviews[0].prompt);
    }
    assert!(
        syntheses
            .iter()
            .all(|call| call.prompt.contains("Review: the agents agree on FR-001."))
    );
    assert!(checks[0].prompt.contains("Synthesized plan.md."));
    assert!(checks[0].prompt.contains("Synthesized research.md."));

    assert_eq!(
        milestones(&events),
        [
            "stage_started",
            "quorum_met",
            "agents_finished",
            "artifact_synthesized",
            "artifact_synthesized",
            "artifact_synthesized",
            "qa_verdict",
        ]
    );
    let Some(Event::StageStarted {
        agents: listed,
        concurrency,
        quorum_needed,
        ..
    }) = events.first()
    else {
        panic!("StageStarted comes first: {:?}", events.first());
    };
    assert_eq!(listed, &owned(&AGENTS));
    assert_eq!((*concurrency, *quorum_needed), (3, 3));
    assert_eq!(
        synthesized(&events),
        [
            ("plan.md".to_owned(), 1),
            ("planning-summary.md".to_owned(), 1),
            ("research.md".to_owned(), 1),
        ]
    );
    assert_eq!(verdicts(&events), [(Verdict::Pass, 1)]);
    let started = events
        .iter()
        .filter(|event| event.kind() == "attempt_started")
        .count();
    let finished = events
        .iter()
        .filter(|event| event.kind() == "attempt_finished")
        .count();
    assert_eq!((started, finished), (calls.len(), calls.len()));

    assert_eq!(product.verdict, Verdict::Pass);
    assert_eq!(product.iterations, 1);
    assert!(product.failures.is_empty());
    let outputs: Vec<&str> = product
        .outputs
        .iter()
        .map(|output| output.agent.as_str())
        .collect();
    assert_eq!(outputs, AGENTS, "outputs keep the stage's agent order");
}

#[tokio::test(start_paused = true)]
async fn the_artifacts_of_a_synthesis_run_in_waves_under_the_limit_and_qa_waits_for_the_last() {
    const MS_100: Duration = Duration::from_millis(100);
    let harness = Harness::new(
        &AGENTS,
        &[
            (AGENTS[0], succeed(MS_100, "requirements")),
            (AGENTS[1], succeed(MS_100, "architecture")),
            (AGENTS[2], succeed(MS_100, "risks")),
            (AGENTS[3], succeed(MS_100, "estimate")),
            (REVIEWER, succeed(MS_100, "Review: fine.")),
            (SYNTHESIZER, succeed(MS_100, "# An artifact\n")),
            (QA, succeed(MS_100, "VERDICT: PASS\n")),
        ],
    );
    let (result, events) = harness.run().await;
    let product = result.expect("the stage reaches its gate");
    let calls = harness.calls();
    let reviews = of_phase(&calls, Phase::Review);
    let syntheses = of_phase(&calls, Phase::Synthesis);
    let checks = of_phase(&calls, Phase::Qa);

    // Four artifacts (none skipped) of 100 ms under a limit of 3: two waves, 200 ms.
    assert_eq!(syntheses.len(), 4);
    assert_eq!(first_start(&syntheses), reviews[0].ended);
    assert_eq!(last_end(&syntheses), first_start(&syntheses) + 2 * MS_100);
    assert_eq!(max_in_flight(&syntheses), 3);
    assert_eq!(
        syntheses
            .iter()
            .filter(|call| call.started == reviews[0].ended)
            .count(),
        3
    );
    // QA starts the moment the last artifact is back, never before.
    assert_eq!(checks.len(), 1);
    assert_eq!(checks[0].started, last_end(&syntheses));
    // Each artifact's first attempt is attempt 1; the events keep the artifacts' order.
    assert!(syntheses.iter().all(|call| call.identity.attempt == 1));
    assert_eq!(
        synthesized(&events),
        [
            ("plan.md".to_owned(), 1),
            ("planning-summary.md".to_owned(), 1),
            ("research.md".to_owned(), 1),
            ("data-model.md".to_owned(), 1),
        ]
    );
    assert_eq!(product.artifacts.len(), 4);
    assert_eq!(product.verdict, Verdict::Pass);
}

// ----- 2. the concurrency limit -------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn never_more_agents_in_flight_than_the_limit() {
    let ids: Vec<String> = (1..=8).map(|index| format!("agent-{index}")).collect();
    let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let latencies = [3, 1, 4, 1, 5, 9, 2, 6];
    let mut script: Vec<(&str, Behavior)> = id_refs
        .iter()
        .zip(latencies)
        .map(|(id, seconds)| (*id, succeed(seconds * SECOND, "ok")))
        .collect();
    // One agent retries: its backoff must not free its permit.
    script[1] = (
        id_refs[1],
        Behavior::FailFirst {
            failures: 1,
            latency: SECOND,
        },
    );
    let harness = Harness::new(&id_refs, &script);
    let (result, _events) = harness.run().await;
    result.expect("the stage reaches its gate");
    let calls = harness.calls();
    let agents = of_phase(&calls, Phase::Agent);
    assert_eq!(agents.len(), 9, "8 agents, one of them twice");
    assert_eq!(max_in_flight(&agents), 3);

    // The queue is first in, first out: first attempts start in the plan's order.
    let first_starts: Vec<Instant> = id_refs
        .iter()
        .map(|id| attempts_of(&calls, id)[0].started)
        .collect();
    assert!(
        first_starts.windows(2).all(|pair| pair[0] <= pair[1]),
        "{first_starts:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn the_permit_is_held_through_the_backoff() {
    let harness = {
        let mut harness = Harness::new(
            &["agent-a", "agent-b"],
            &[(
                "agent-a",
                Behavior::FailFirst {
                    failures: 1,
                    latency: SECOND,
                },
            )],
        );
        harness.plan.concurrency = 1;
        harness
    };
    let (result, _events) = harness.run().await;
    result.expect("the stage reaches its gate");
    let calls = harness.calls();
    let a = attempts_of(&calls, "agent-a");
    let b = attempts_of(&calls, "agent-b");
    assert_eq!(attempt_numbers(&a), [1, 2]);
    assert_eq!(attempt_numbers(&b), [1]);
    assert!(
        a[1].started >= a[0].ended + SECOND,
        "a's retry waits its backoff"
    );
    assert_eq!(
        b[0].started, a[1].ended,
        "b starts only when a's retry has finished, not during a's backoff"
    );
}

// ----- 3. retries after the backoff ---------------------------------------------------

#[tokio::test(start_paused = true)]
async fn retries_wait_for_the_exponential_backoff_plus_at_most_ten_percent() {
    let harness = Harness::new(
        &AGENTS,
        &[(
            AGENTS[1],
            Behavior::FailFirst {
                failures: 2,
                latency: SECOND,
            },
        )],
    );
    let (result, events) = harness.run().await;
    let product = result.expect("the stage reaches its gate");
    assert!(product.failures.is_empty());
    let calls = harness.calls();
    let attempts = attempts_of(&calls, AGENTS[1]);
    assert_eq!(attempt_numbers(&attempts), [1, 2, 3]);
    assert!(attempts[0].result.is_err() && attempts[1].result.is_err());
    assert!(attempts[2].result.is_ok());

    let delays: Vec<(u32, u64)> = events
        .iter()
        .filter_map(|event| match event {
            Event::RetryScheduled {
                identity, delay_ms, ..
            } => Some((identity.attempt, *delay_ms)),
            _ => None,
        })
        .collect();
    assert_eq!(delays.len(), 2, "{delays:?}");
    for (retry, (failed, next), base_ms) in [(0, (0, 1), 1000_u64), (1, (1, 2), 2000)] {
        let (attempt, delay_ms) = delays[retry];
        assert_eq!(
            attempt, attempts[failed].identity.attempt,
            "the failed attempt"
        );
        assert!(
            (base_ms..=base_ms + base_ms / 10).contains(&delay_ms),
            "retry {} waits {delay_ms} ms",
            retry + 1
        );
        let gap = attempts[next].started - attempts[failed].ended;
        assert!(gap >= Duration::from_millis(base_ms), "{gap:?}");
        assert!(
            gap >= Duration::from_millis(delay_ms),
            "{gap:?} vs {delay_ms} ms"
        );
        assert!(
            gap <= Duration::from_millis(delay_ms + 2),
            "{gap:?} vs {delay_ms} ms"
        );
    }
    let statuses: Vec<AttemptStatus> = events
        .iter()
        .filter_map(|event| match event {
            Event::AttemptFinished {
                identity, status, ..
            } if identity.agent == AGENTS[1] => Some(*status),
            _ => None,
        })
        .collect();
    assert_eq!(
        statuses,
        [
            AttemptStatus::Failed,
            AttemptStatus::Failed,
            AttemptStatus::Ok
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_permanent_failure_is_not_retried() {
    let harness = Harness::new(&AGENTS, &[(AGENTS[3], Behavior::FailPermanent)]);
    let (result, events) = harness.run().await;
    let product = result.expect("3 of 4 is the quorum");
    let calls = harness.calls();
    assert_eq!(attempt_numbers(&attempts_of(&calls, AGENTS[3])), [1]);
    assert!(!events.iter().any(|event| event.kind() == "retry_scheduled"));
    assert_eq!(product.failures.len(), 1);
    assert_eq!(product.failures[0].agent, AGENTS[3]);
    assert!(
        product.failures[0]
            .reason
            .contains("the program is missing"),
        "{:?}",
        product.failures
    );
}

// ----- 4. quorum and the sequential pass ----------------------------------------------

#[tokio::test(start_paused = true)]
async fn three_of_four_go_on_and_the_failure_is_reported() {
    let harness = Harness::new(
        &AGENTS,
        &[(AGENTS[2], Behavior::FailAlways { latency: SECOND })],
    );
    let (result, events) = harness.run().await;
    let product = result.expect("3 of 4 is the quorum");
    let calls = harness.calls();

    assert_eq!(attempt_numbers(&attempts_of(&calls, AGENTS[2])), [1, 2, 3]);
    assert!(!milestones(&events).contains(&"sequential_pass_started"));
    assert!(events.iter().any(|event| matches!(
        event,
        Event::QuorumMet {
            succeeded: 3,
            needed: 3,
            total: 4,
            ..
        }
    )));
    let agents_finished = events.iter().find_map(|event| match event {
        Event::AgentsFinished {
            succeeded, failed, ..
        } => Some((succeeded.clone(), failed.clone())),
        _ => None,
    });
    let (succeeded, failed) = agents_finished.expect("AgentsFinished");
    assert_eq!(succeeded, owned(&[AGENTS[0], AGENTS[1], AGENTS[3]]));
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].agent, AGENTS[2]);

    // The reviewer is told who failed, and why.
    let review = of_phase(&calls, Phase::Review)[0];
    let line = format!("- {}: scripted failure of {}", AGENTS[2], AGENTS[2]);
    assert!(review.prompt.contains(&line), "{}", review.prompt);

    // So is the person, in the summary artifact (and only there).
    let summary = artifact(&product, "planning-summary.md");
    let outcomes = summary
        .split_once("## Agent outcomes")
        .map(|(_, section)| section)
        .unwrap_or_else(|| panic!("an Agent outcomes section in {summary}"));
    for agent in [AGENTS[0], AGENTS[1], AGENTS[3]] {
        assert!(outcomes.contains(&format!("| {agent} | ")), "{outcomes}");
    }
    let failed_row = outcomes
        .lines()
        .find(|row| row.starts_with(&format!("| {} |", AGENTS[2])))
        .unwrap_or_else(|| panic!("a row for the failed agent in {outcomes}"));
    assert!(
        failed_row.contains("failed: scripted failure"),
        "{failed_row}"
    );
    assert!(outcomes.contains("1 of 4 agents failed"), "{outcomes}");
    assert!(!artifact(&product, "plan.md").contains("Agent outcomes"));
}

#[tokio::test(start_paused = true)]
async fn two_of_four_failing_lose_the_quorum_after_one_sequential_pass() {
    let harness = Harness::new(
        &AGENTS,
        &[
            (AGENTS[1], Behavior::FailAlways { latency: SECOND }),
            (
                AGENTS[3],
                Behavior::FailAlways {
                    latency: 2 * SECOND,
                },
            ),
        ],
    );
    let (result, events) = harness.run().await;
    let Err(StageError::QuorumNotMet { reason, failures }) = result else {
        panic!("expected QuorumNotMet, got {result:?}");
    };
    assert!(reason.contains("2 of 4 agents failed"), "{reason}");
    let failed: Vec<&str> = failures
        .iter()
        .map(|failure| failure.agent.as_str())
        .collect();
    assert_eq!(failed, [AGENTS[1], AGENTS[3]]);

    let calls = harness.calls();
    let parallel: Vec<&CallRecord> = calls
        .iter()
        .filter(|call| call.identity.attempt <= 3)
        .collect();
    let sequential: Vec<&CallRecord> = calls
        .iter()
        .filter(|call| call.identity.attempt > 3)
        .collect();
    for agent in [AGENTS[1], AGENTS[3]] {
        // Retries 2 → attempts 1–3 in parallel, then exactly one more.
        assert_eq!(attempt_numbers(&attempts_of(&calls, agent)), [1, 2, 3, 4]);
    }
    for agent in [AGENTS[0], AGENTS[2]] {
        assert_eq!(attempt_numbers(&attempts_of(&calls, agent)), [1]);
    }
    assert_eq!(sequential.len(), 2);
    assert!(first_start(&sequential) >= last_end(&parallel));
    assert!(
        one_at_a_time(&sequential),
        "the sequential pass runs one at a time"
    );
    assert!(
        of_phase(&calls, Phase::Review).is_empty(),
        "no review without a quorum"
    );

    assert_eq!(
        milestones(&events),
        [
            "stage_started",
            "quorum_lost",
            "sequential_pass_started",
            "agents_finished",
        ]
    );
    let pass = events.iter().find_map(|event| match event {
        Event::SequentialPassStarted { agents, .. } => Some(agents.clone()),
        _ => None,
    });
    assert_eq!(pass, Some(owned(&[AGENTS[1], AGENTS[3]])));
}

/// Four agents: the second always fails, the third fails its three parallel attempts and
/// succeeds in the sequential pass.
fn one_lost_one_rescued() -> Harness {
    Harness::new(
        &AGENTS,
        &[
            (AGENTS[1], Behavior::FailAlways { latency: SECOND }),
            (
                AGENTS[2],
                Behavior::FailFirst {
                    failures: 3,
                    latency: SECOND,
                },
            ),
        ],
    )
}

#[tokio::test(start_paused = true)]
async fn the_sequential_pass_can_rescue_the_quorum() {
    let harness = one_lost_one_rescued();
    let (result, events) = harness.run().await;
    let product = result.expect("the sequential pass restores 3 of 4");
    let calls = harness.calls();
    let rescued = attempts_of(&calls, AGENTS[2]);
    assert_eq!(attempt_numbers(&rescued), [1, 2, 3, 4]);
    assert!(rescued[3].result.is_ok());
    let failed: Vec<&str> = product
        .failures
        .iter()
        .map(|failure| failure.agent.as_str())
        .collect();
    assert_eq!(failed, [AGENTS[1]]);
    let kinds = milestones(&events);
    assert_eq!(
        &kinds[..5],
        [
            "stage_started",
            "quorum_lost",
            "sequential_pass_started",
            "quorum_met",
            "agents_finished",
        ]
    );
}

// ----- 5. a required agent ------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn a_required_agent_failing_loses_the_quorum_even_with_three_of_four() {
    let mut harness = Harness::new(
        &AGENTS,
        &[(AGENTS[0], Behavior::FailAlways { latency: SECOND })],
    );
    harness.agent_mut(AGENTS[0]).required = true;
    let (result, events) = harness.run().await;
    let Err(StageError::QuorumNotMet { reason, failures }) = result else {
        panic!("expected QuorumNotMet, got {result:?}");
    };
    assert_eq!(reason, format!("required agent {} failed", AGENTS[0]));
    assert_eq!(failures.len(), 1);
    let calls = harness.calls();
    assert_eq!(
        attempt_numbers(&attempts_of(&calls, AGENTS[0])),
        [1, 2, 3, 4]
    );
    let pass = events.iter().find_map(|event| match event {
        Event::SequentialPassStarted { agents, .. } => Some(agents.clone()),
        _ => None,
    });
    assert_eq!(pass, Some(owned(&[AGENTS[0]])));
    assert!(of_phase(&calls, Phase::Review).is_empty());
}

// ----- 6. fallback --------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn the_fallback_backend_runs_after_the_last_attempt() {
    let mut harness = Harness::new(
        &AGENTS,
        &[(AGENTS[1], Behavior::FailAlways { latency: SECOND })],
    );
    let fallback = harness.backend("fallback", &[]);
    harness.agent_mut(AGENTS[1]).fallback = Some(fallback);
    let (result, events) = harness.run().await;
    let product = result.expect("the stage reaches its gate");
    assert!(product.failures.is_empty(), "{:?}", product.failures);

    let calls = harness.calls();
    let attempts = attempts_of(&calls, AGENTS[1]);
    assert_eq!(attempt_numbers(&attempts), [1, 2, 3, 4]);
    let backends: Vec<&str> = attempts.iter().map(|call| call.backend.as_str()).collect();
    assert_eq!(backends, ["primary", "primary", "primary", "fallback"]);
    assert!(attempts[3].result.is_ok());
    assert_eq!(
        attempts[3].started, attempts[2].ended,
        "no backoff before the fallback"
    );
    assert!(events.iter().any(|event| matches!(
        event,
        Event::FallbackStarted { agent, from, to, .. }
            if agent == AGENTS[1] && from == "primary" && to == "fallback"
    )));
    let fallback_attempt = events.iter().find_map(|event| match event {
        Event::AttemptStarted {
            identity, backend, ..
        } if backend == "fallback" => Some(identity.attempt),
        _ => None,
    });
    assert_eq!(fallback_attempt, Some(4));
}

// ----- 7. per-attempt timeouts --------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn each_attempt_times_out_counted_from_its_own_start() {
    let harness = Harness::new(&AGENTS, &[(AGENTS[2], Behavior::Hang)]);
    let (result, events) = harness.run().await;
    let product = result.expect("3 of 4 is the quorum");
    assert_eq!(product.failures.len(), 1);
    assert_eq!(product.failures[0].reason, "timed out after 30000 ms");

    let calls = harness.calls();
    let attempts = attempts_of(&calls, AGENTS[2]);
    assert_eq!(attempt_numbers(&attempts), [1, 2, 3]);
    for attempt in &attempts {
        assert_eq!(attempt.deadline, attempt.started + 30 * SECOND);
        assert_eq!(attempt.ended - attempt.started, 30 * SECOND);
        assert_eq!(attempt.result, Err(Failure::TimedOut { after_ms: 30_000 }));
    }
    // The second attempt starts after the backoff, and its 30 s count from there.
    assert!(attempts[1].started >= attempts[0].ended + SECOND);
    assert!(attempts[2].started >= attempts[1].ended + 2 * SECOND);
    let timed_out = events
        .iter()
        .filter(|event| {
            matches!(
                event,
                Event::AttemptFinished {
                    status: AttemptStatus::TimedOut,
                    duration_ms: 30_000,
                    ..
                }
            )
        })
        .count();
    assert_eq!(timed_out, 3);
}

// ----- 8. QA rework -------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn qa_rework_sends_its_feedback_back_to_the_synthesizer() {
    let harness = Harness::new(&AGENTS, &[(QA, Behavior::QaReworkFirst { reworks: 1 })]);
    let (result, events) = harness.run().await;
    let product = result.expect("the stage reaches its gate");
    assert_eq!(product.verdict, Verdict::Pass);
    assert_eq!(product.iterations, 2);
    assert_eq!(
        verdicts(&events),
        [(Verdict::Rework, 1), (Verdict::Pass, 2)]
    );

    let calls = harness.calls();
    let checks = of_phase(&calls, Phase::Qa);
    assert_eq!(checks.len(), 2);
    let plan_syntheses: Vec<&CallRecord> = of_phase(&calls, Phase::Synthesis)
        .into_iter()
        .filter(|call| call.identity.artifact.as_deref() == Some("plan.md"))
        .collect();
    assert_eq!(plan_syntheses.len(), 2, "synthesis runs twice");
    assert!(!plan_syntheses[0].prompt.contains(QA_FEEDBACK));
    assert!(plan_syntheses[1].started >= checks[0].ended);
    assert!(
        plan_syntheses[1].prompt.contains(QA_FEEDBACK),
        "{}",
        plan_syntheses[1].prompt
    );
    assert!(
        plan_syntheses[1]
            .prompt
            .contains("Previous version of plan.md")
    );
    let rounds: Vec<u32> = synthesized(&events)
        .into_iter()
        .filter(|(name, _)| name == "plan.md")
        .map(|(_, iteration)| iteration)
        .collect();
    assert_eq!(rounds, [1, 2]);
    assert_eq!(of_phase(&calls, Phase::Agent).len(), 4, "agents run once");
    assert_eq!(
        of_phase(&calls, Phase::Review).len(),
        1,
        "the review runs once"
    );
}

#[tokio::test(start_paused = true)]
async fn qa_rework_is_bounded_by_the_synthesis_iterations() {
    for iterations in [0, 1, 2] {
        let mut harness = Harness::new(&AGENTS, &[(QA, Behavior::QaAlwaysRework)]);
        harness.plan.synthesis_iterations = iterations;
        let (result, events) = harness.run().await;
        let product = result.expect("a REWORK verdict still reaches the gate");
        let rounds = 1 + iterations;
        assert_eq!(product.verdict, Verdict::Rework, "the person decides");
        assert_eq!(product.iterations, rounds);
        assert!(product.qa_feedback.contains(QA_FEEDBACK));
        let calls = harness.calls();
        assert_eq!(
            of_phase(&calls, Phase::Qa).len(),
            usize::try_from(rounds).expect("small")
        );
        let expected: Vec<(Verdict, u32)> =
            (1..=rounds).map(|round| (Verdict::Rework, round)).collect();
        assert_eq!(
            verdicts(&events),
            expected,
            "synthesis_iterations = {iterations}"
        );
    }
}

// ----- 9. the stage deadline ----------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn the_stage_deadline_stops_hung_agents() {
    let script: Vec<(&str, Behavior)> = AGENTS.iter().map(|id| (*id, Behavior::Hang)).collect();
    let mut harness = Harness::new(&AGENTS, &script);
    harness.plan.stage_timeout = 5 * SECOND;
    let t0 = Instant::now();
    let deadline = t0 + 5 * SECOND;
    let (result, events) = harness.run().await;
    assert!(
        matches!(result, Err(StageError::TimedOut { limit }) if limit == 5 * SECOND),
        "{result:?}"
    );
    assert_eq!(
        Instant::now(),
        deadline,
        "run_stage returns at the deadline"
    );
    let calls = harness.calls();
    assert!(!calls.is_empty());
    let slack = Duration::from_millis(10);
    for call in &calls {
        assert!(
            call.deadline <= deadline,
            "attempt deadlines are capped by the stage's"
        );
        assert!(call.ended <= deadline + slack, "{call:?}");
        assert!(call.result.is_err());
    }
    assert_eq!(
        of_phase(&calls, Phase::Agent).len(),
        3,
        "the queued fourth agent never starts"
    );
    assert!(of_phase(&calls, Phase::Review).is_empty());
    assert_eq!(milestones(&events).last(), Some(&"agents_finished"));
}

#[tokio::test(start_paused = true)]
async fn the_stage_deadline_stops_a_hung_review() {
    let mut harness = Harness::new(&AGENTS, &[(REVIEWER, Behavior::Hang)]);
    harness.plan.stage_timeout = 5 * SECOND;
    let deadline = Instant::now() + 5 * SECOND;
    let (result, _events) = harness.run().await;
    assert!(
        matches!(result, Err(StageError::TimedOut { limit }) if limit == 5 * SECOND),
        "{result:?}"
    );
    let calls = harness.calls();
    let review = of_phase(&calls, Phase::Review);
    assert_eq!(review.len(), 1);
    assert!(review[0].ended <= deadline + Duration::from_millis(10));
    assert!(of_phase(&calls, Phase::Synthesis).is_empty());
}

// ----- 10. a person's rework ----------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn rework_resynthesizes_with_the_feedback_without_asking_the_agents_again() {
    let harness = Harness::new(&AGENTS, &[]);
    let (result, _events) = harness.run().await;
    let product = result.expect("the stage reaches its gate");
    let before = harness.calls().len();

    let feedback = "Add a rollout section with a feature flag.";
    let mut sink = CollectingSink::default();
    let reworked = rework(
        &harness.plan,
        &harness.context,
        &mut sink,
        &product,
        feedback,
        &[LineComment {
            artifact: "plan.md".to_owned(),
            first_line: 3,
            last_line: 4,
            quoted: "Synthesized plan.md.".to_owned(),
            comment: "Say which component owns this.".to_owned(),
        }],
    )
    .await
    .expect("rework reaches the gate again");
    let calls = harness.calls();
    let new_calls = &calls[before..];
    assert!(
        new_calls
            .iter()
            .all(|call| matches!(call.identity.phase, Phase::Synthesis | Phase::Qa)),
        "only synthesis and QA run again: {new_calls:?}"
    );
    let syntheses: Vec<&CallRecord> = new_calls
        .iter()
        .filter(|call| call.identity.phase == Phase::Synthesis)
        .collect();
    assert_eq!(
        syntheses.len(),
        4,
        "every file artifact, data-model.md asked again"
    );
    for synthesis in &syntheses {
        assert!(synthesis.prompt.contains(feedback), "{}", synthesis.prompt);
    }
    let plan_synthesis = syntheses
        .iter()
        .find(|call| call.identity.artifact.as_deref() == Some("plan.md"))
        .expect("plan.md synthesized again");
    assert!(
        plan_synthesis
            .prompt
            .contains("Previous version of plan.md")
    );
    assert!(plan_synthesis.prompt.contains("Synthesized plan.md."));
    // A line comment reaches the synthesis of its own artifact only.
    for synthesis in &syntheses {
        let commented = synthesis.identity.artifact.as_deref() == Some("plan.md");
        assert_eq!(
            synthesis
                .prompt
                .contains("Comment 1: `plan.md` lines 3-4\n"),
            commented,
            "{}",
            synthesis.prompt
        );
        assert_eq!(
            synthesis.prompt.contains("Say which component owns this."),
            commented
        );
    }
    let checks: Vec<&CallRecord> = new_calls
        .iter()
        .filter(|call| call.identity.phase == Phase::Qa)
        .collect();
    assert_eq!(checks.len(), 1);
    assert!(checks[0].started >= last_end(&syntheses));

    assert_eq!(reworked.verdict, Verdict::Pass);
    assert_eq!(reworked.iterations, 2, "1 + the person's rework");
    assert_eq!(reworked.review, product.review);
    assert_eq!(
        milestones(&sink.events),
        [
            "artifact_synthesized",
            "artifact_synthesized",
            "artifact_synthesized",
            "qa_verdict",
        ]
    );
}

// ----- 11. Ctrl-C ---------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn ctrl_c_interrupts_the_agents() {
    let script: Vec<(&str, Behavior)> = AGENTS.iter().map(|id| (*id, Behavior::Hang)).collect();
    let harness = Harness::new(&AGENTS, &script);
    let t0 = Instant::now();
    let cancel = harness.context.cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(3 * SECOND).await;
        cancel.cancel();
    });
    let (result, events) = harness.run().await;
    assert!(matches!(result, Err(StageError::Interrupted)), "{result:?}");
    assert_eq!(Instant::now(), t0 + 3 * SECOND);
    let calls = harness.calls();
    assert_eq!(
        calls.len(),
        3,
        "the queued fourth agent never starts: {calls:?}"
    );
    for call in &calls {
        assert_eq!(call.ended, t0 + 3 * SECOND);
        assert_eq!(call.result, Err(Failure::Cancelled));
    }
    assert!(!milestones(&events).contains(&"sequential_pass_started"));
    let cancelled = events
        .iter()
        .filter(|event| {
            matches!(
                event,
                Event::AttemptFinished {
                    status: AttemptStatus::Cancelled,
                    ..
                }
            )
        })
        .count();
    assert_eq!(cancelled, 3);
}

#[tokio::test(start_paused = true)]
async fn ctrl_c_interrupts_the_synthesis() {
    let harness = Harness::new(&AGENTS, &[(SYNTHESIZER, Behavior::Hang)]);
    let t0 = Instant::now();
    let cancel = harness.context.cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(5 * SECOND).await;
        cancel.cancel();
    });
    let (result, _events) = harness.run().await;
    assert!(matches!(result, Err(StageError::Interrupted)), "{result:?}");
    let calls = harness.calls();
    let syntheses = of_phase(&calls, Phase::Synthesis);
    // The first wave (3 artifacts under the limit) was in flight; nothing retried or started
    // after the cancel.
    assert_eq!(syntheses.len(), 3, "no retry after a cancel");
    assert!(syntheses.iter().all(|call| call.identity.attempt == 1));
    assert!(syntheses.iter().all(|call| call.ended == t0 + 5 * SECOND));
    assert!(of_phase(&calls, Phase::Qa).is_empty());
}

// ----- adaptive rules while the agents run -----------------------------------------------

#[tokio::test(start_paused = true)]
async fn a_failure_rate_above_the_threshold_lowers_the_concurrency_for_the_agents_left() {
    let agents = ["a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8"];
    let mut harness = Harness::new(
        &agents,
        &[
            ("a1", Behavior::FailPermanent),
            ("a2", Behavior::FailPermanent),
        ],
    );
    harness.plan.min_success_ratio = 0.5;
    harness.plan.adaptation.live = Some(LiveRules {
        failure_rate: 0.3,
        timeout_rate: 0.2,
    });
    let (result, events) = harness.run().await;
    result.expect("6 of 8 meet a 50 % quorum");
    let adjusted: Vec<(&str, &str, &str)> = events
        .iter()
        .filter_map(|event| match event {
            Event::Adjusted {
                setting, from, to, ..
            } => Some((setting.as_str(), from.as_str(), to.as_str())),
            _ => None,
        })
        .collect();
    assert_eq!(adjusted, vec![("concurrency", "3", "2")], "lowered once");
    // The agents started after the adjustment never ran more than 2 at once.
    let calls = harness.calls();
    let agent_calls = of_phase(&calls, Phase::Agent);
    let later: Vec<&CallRecord> = agent_calls
        .iter()
        .copied()
        .filter(|call| ["a5", "a6", "a7", "a8"].contains(&call.identity.agent.as_str()))
        .collect();
    assert!(max_in_flight(&later) <= 2, "{later:#?}");
}

#[tokio::test(start_paused = true)]
async fn a_timeout_rate_above_the_threshold_lengthens_the_remaining_timeouts() {
    let agents = ["h1", "s2", "s3", "s4", "s5"];
    let mut harness = Harness::new(
        &agents,
        &[
            ("h1", Behavior::Hang),
            ("s2", succeed(Duration::from_millis(10), "quick")),
            ("s3", succeed(Duration::from_millis(10), "quick")),
            ("s4", succeed(Duration::from_millis(10), "quick")),
            ("s5", succeed(Duration::from_millis(10), "quick")),
        ],
    );
    for id in agents {
        harness.agent_mut(id).retry = RetryPolicy::new(0, SECOND);
    }
    harness.plan.min_success_ratio = 0.5;
    harness.plan.concurrency = 1;
    harness.plan.adaptation.live = Some(LiveRules {
        failure_rate: 1.0,
        timeout_rate: 0.2,
    });
    let (result, events) = harness.run().await;
    result.expect("4 of 5 succeed");
    let raised = events.iter().any(|event| {
        matches!(event, Event::Adjusted { setting, from, to, .. }
            if setting == "remaining timeouts" && from == "30s" && to == "45s")
    });
    assert!(raised, "{events:#?}");
    let calls = harness.calls();
    let s4 = attempts_of(&calls, "s4");
    assert_eq!(s4[0].deadline - s4[0].started, 45 * SECOND);
}

// ----- storing beside the calls ------------------------------------------------------------

/// A sink whose every store takes `STORE`: `emit` waits for it; queued events are stored in
/// the background, one store per batch, and `settle` waits for the last one.
#[derive(Default)]
struct SlowStore {
    events: Vec<Event>,
    /// When the last queued batch is stored.
    stored_at: Option<Instant>,
    queued_batches: usize,
    waited_stores: usize,
}

const STORE: Duration = Duration::from_millis(50);

impl stagegate_engine::event::EventSink for SlowStore {
    async fn emit(&mut self, event: &Event) -> Result<(), stagegate_engine::event::SinkError> {
        self.settle().await?;
        self.waited_stores += 1;
        tokio::time::sleep(STORE).await;
        self.events.push(event.clone());
        Ok(())
    }

    async fn queue_all(
        &mut self,
        events: Vec<Event>,
    ) -> Result<(), stagegate_engine::event::SinkError> {
        // Stores run one after another: this batch is stored one store after the last.
        let after = self
            .stored_at
            .unwrap_or_else(Instant::now)
            .max(Instant::now());
        self.stored_at = Some(after + STORE);
        self.queued_batches += 1;
        self.events.extend(events);
        Ok(())
    }

    async fn settle(&mut self) -> Result<(), stagegate_engine::event::SinkError> {
        if let Some(stored_at) = self.stored_at.take() {
            tokio::time::sleep_until(stored_at).await;
        }
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn freed_slots_are_refilled_while_the_outcomes_are_still_being_stored() {
    let ids: Vec<String> = (1..=9).map(|index| format!("agent-{index}")).collect();
    let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let script: Vec<(&str, Behavior)> = id_refs
        .iter()
        .map(|id| (*id, succeed(SECOND, "ok")))
        .collect();
    let mut harness = Harness::new(&id_refs, &script);
    harness.plan.min_success_ratio = 1.0;
    let mut sink = SlowStore::default();
    let result = run_stage(&harness.plan, &harness.context, &mut sink).await;
    result.expect("the stage reaches its gate");
    let calls = harness.calls();
    let agents = of_phase(&calls, Phase::Agent);
    assert_eq!(agents.len(), 9);
    // Three waves of three, each starting the instant the one before ends: no wave waits for
    // the store of the outcomes before it (50 ms each).
    let first = first_start(&agents);
    for (index, call) in agents.iter().enumerate() {
        let wave = u32::try_from(index / 3).expect("small");
        assert_eq!(
            call.started - first,
            SECOND * wave,
            "{}",
            call.identity.agent
        );
    }
    assert!(sink.queued_batches >= 3, "{}", sink.queued_batches);
    // The review starts only once every outcome before it is stored.
    let review = of_phase(&calls, Phase::Review);
    assert!(review[0].started - last_end(&agents) >= STORE);
}

#[tokio::test(start_paused = true)]
async fn the_sequential_pass_starts_only_once_the_parallel_outcomes_are_stored() {
    let harness = one_lost_one_rescued();
    let mut sink = SlowStore::default();
    run_stage(&harness.plan, &harness.context, &mut sink)
        .await
        .expect("the sequential pass restores 3 of 4");
    let calls = harness.calls();
    let rescued = attempts_of(&calls, AGENTS[2]);
    let parallel: Vec<&CallRecord> = rescued[..3].to_vec();
    // The pass acts on the parallel outcomes: they are stored before it starts (the last
    // batch takes one STORE after it is queued).
    assert!(rescued[3].started - last_end(&parallel) >= STORE);
}

#[tokio::test(start_paused = true)]
async fn cached_answers_go_to_the_sink_together() {
    let ids: Vec<String> = (1..=6).map(|index| format!("agent-{index}")).collect();
    let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let script: Vec<(&str, Behavior)> = id_refs
        .iter()
        .map(|id| (*id, succeed(SECOND, "ok")))
        .collect();
    let harness = Harness::new(&id_refs, &script);
    // A first run fills the memo with every answer.
    let mut first = CollectingSink::default();
    let mut memo: HashMap<String, Arc<str>> = HashMap::new();
    stagegate_engine::stage::run_stage_memoized(
        &harness.plan,
        &harness.context,
        &mut first,
        Some(&memo),
    )
    .await
    .expect("the first run reaches its gate");
    for event in &first.events {
        if let Event::AttemptFinished {
            cache_key: Some(key),
            output,
            ..
        } = event
        {
            memo.insert(key.clone(), output.clone());
        }
    }
    let mut sink = SlowStore::default();
    let started = Instant::now();
    stagegate_engine::stage::run_stage_memoized(
        &harness.plan,
        &harness.context,
        &mut sink,
        Some(&memo),
    )
    .await
    .expect("the cached run reaches its gate");
    let hits = sink
        .events
        .iter()
        .filter(|event| matches!(event, Event::CacheHit { .. }))
        .count();
    assert!(hits >= 6, "{hits}");
    // The cached answers are queued together, not stored one after another: the whole run
    // waits for fewer stores than it has cache hits.
    assert!(sink.queued_batches >= 1);
    assert!(
        sink.waited_stores < hits,
        "{} waited stores for {hits} cache hits",
        sink.waited_stores
    );
    assert!(Instant::now() - started < STORE * u32::try_from(hits).expect("small"));
}
