//! The one stream of events at the core of a run.
//!
//! The engine produces these and acts on nothing else; subscribers (terminal display, `--json`
//! printer, the store's recorder, metrics) consume them through an [`EventSink`]. Large texts
//! (prompts, outputs, artifacts) travel with the event in memory for the recorder but are not
//! serialized: the JSON form stays one short line per event.
//!
//! Events read back too (see [`crate::envelope`]): the large texts come back empty, and a kind
//! this build does not know (written by a newer stagegate) reads as [`Event::Unknown`].

use std::future::Future;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::backend::{CallIdentity, Failure, Reasoning, TruncationHandling, Usage};

/// Milliseconds since the Unix epoch, the timestamp of every event.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// How one attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptStatus {
    Ok,
    Failed,
    TimedOut,
    Cancelled,
}

impl AttemptStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptStatus::Ok => "ok",
            AttemptStatus::Failed => "failed",
            AttemptStatus::TimedOut => "timed_out",
            AttemptStatus::Cancelled => "cancelled",
        }
    }

    pub(crate) fn of(result: &Result<String, Failure>) -> Self {
        match result {
            Ok(_) => AttemptStatus::Ok,
            Err(Failure::TimedOut { .. }) => AttemptStatus::TimedOut,
            Err(Failure::Cancelled) => AttemptStatus::Cancelled,
            Err(_) => AttemptStatus::Failed,
        }
    }
}

/// The QA verdict on a synthesis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Rework,
}

/// A gate decision as it travels in events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionKind {
    Approve,
    Reject,
    Modify,
    /// stagegate closed the gate: a newer run of the same stage reached its own.
    Supersede,
}

impl DecisionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DecisionKind::Approve => "approve",
            DecisionKind::Reject => "reject",
            DecisionKind::Modify => "modify",
            DecisionKind::Supersede => "supersede",
        }
    }
}

/// How a stage ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StageEnd {
    Approved,
    Rejected,
    AwaitingDecision,
    Failed,
    Interrupted,
}

/// An agent that did not succeed, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentFailure {
    pub agent: String,
    pub reason: String,
}

/// Everything that happens in a run.
///
/// Fields marked `#[serde(skip)]` (prompts, outputs, stderr, artifact contents) are not in the
/// JSON form and read back empty.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    RunStarted {
        run_id: String,
        feature_dir: String,
        stages: Vec<String>,
        at_ms: i64,
    },
    StageStarted {
        run_id: String,
        stage: String,
        name: String,
        agents: Vec<String>,
        concurrency: usize,
        quorum_needed: usize,
        at_ms: i64,
    },
    /// The complexity and uncertainty scores of the stage's inputs, with how they came about.
    InputsScored {
        run_id: String,
        stage: String,
        complexity: u32,
        uncertainty: u32,
        /// `62/100 (requirements 11 → 12.8, …)` for each score.
        complexity_parts: String,
        uncertainty_parts: String,
        at_ms: i64,
    },
    /// A call's prompt left part of its inputs out to fit the backend's context; the prompt
    /// says so too.
    ContextCut {
        run_id: String,
        stage: String,
        phase: crate::backend::Phase,
        agent: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        artifact: Option<String>,
        /// `tasks.md was cut from 120 KB to 40 KB`, one per file.
        cuts: Vec<String>,
        at_ms: i64,
    },
    /// An adaptive rule changed the stage's settings.
    Adjusted {
        run_id: String,
        stage: String,
        setting: String,
        from: String,
        to: String,
        reason: String,
        at_ms: i64,
    },
    AttemptStarted {
        #[serde(flatten)]
        identity: CallIdentity,
        backend: String,
        at_ms: i64,
        #[serde(skip)]
        prompt: Arc<str>,
        /// Where the agent's own values start and end in `prompt`, when it was filled in from
        /// a layout ([`crate::prompt::RenderedPrompt::joints`]).
        #[serde(skip)]
        prompt_joints: Arc<[usize]>,
    },
    AttemptFinished {
        #[serde(flatten)]
        identity: CallIdentity,
        backend: String,
        status: AttemptStatus,
        #[serde(skip_serializing_if = "Option::is_none")]
        failure: Option<Failure>,
        duration_ms: u64,
        output_bytes: usize,
        #[serde(skip_serializing_if = "Option::is_none")]
        output_hash: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        confidence: Option<f64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        usage: Option<Usage>,
        /// What a successful output is cached under.
        #[serde(skip_serializing_if = "Option::is_none")]
        cache_key: Option<String>,
        at_ms: i64,
        #[serde(skip)]
        output: Arc<str>,
        #[serde(skip)]
        stderr: Arc<[u8]>,
    },
    /// A call answered from an earlier identical call's output, without running the agent.
    CacheHit {
        #[serde(flatten)]
        identity: CallIdentity,
        backend: String,
        cache_key: String,
        output_bytes: usize,
        output_hash: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        confidence: Option<f64>,
        at_ms: i64,
        /// The prompt this call would have sent, kept beside the cached answer.
        #[serde(skip)]
        prompt: Arc<str>,
        /// As in [`Event::AttemptStarted`].
        #[serde(skip)]
        prompt_joints: Arc<[usize]>,
        #[serde(skip)]
        output: Arc<str>,
    },
    RetryScheduled {
        #[serde(flatten)]
        identity: CallIdentity,
        delay_ms: u64,
        at_ms: i64,
    },
    /// The model stopped at its output-token limit during this attempt; `handling` says what
    /// the backend's `on_truncation` did about it. Sent before the attempt's `attempt_finished`.
    AnswerTruncated {
        #[serde(flatten)]
        identity: CallIdentity,
        backend: String,
        /// How many times the answer was cut.
        cuts: u32,
        handling: TruncationHandling,
        at_ms: i64,
    },
    /// The model reasoned before answering; the reasoning was taken out of the answer.
    ReasoningStripped {
        #[serde(flatten)]
        identity: CallIdentity,
        backend: String,
        #[serde(flatten)]
        reasoning: Reasoning,
        at_ms: i64,
    },
    FallbackStarted {
        run_id: String,
        stage: String,
        agent: String,
        from: String,
        to: String,
        at_ms: i64,
    },
    QuorumMet {
        run_id: String,
        stage: String,
        succeeded: usize,
        needed: usize,
        total: usize,
        at_ms: i64,
    },
    QuorumLost {
        run_id: String,
        stage: String,
        reason: String,
        at_ms: i64,
    },
    SequentialPassStarted {
        run_id: String,
        stage: String,
        agents: Vec<String>,
        at_ms: i64,
    },
    AgentsFinished {
        run_id: String,
        stage: String,
        succeeded: Vec<String>,
        failed: Vec<AgentFailure>,
        at_ms: i64,
    },
    ArtifactSynthesized {
        run_id: String,
        stage: String,
        artifact: String,
        iteration: u32,
        bytes: usize,
        hash: String,
        at_ms: i64,
        #[serde(skip)]
        content: Arc<str>,
    },
    QaVerdict {
        run_id: String,
        stage: String,
        iteration: u32,
        verdict: Verdict,
        feedback: String,
        at_ms: i64,
    },
    GateRequested {
        run_id: String,
        stage: String,
        question: String,
        artifacts: Vec<String>,
        at_ms: i64,
    },
    /// The run stops at this gate until a person decides from another process.
    GateWaiting {
        run_id: String,
        stage: String,
        /// The commands that decide it.
        commands: Vec<String>,
        /// The feature's files that approval would create, and those it would replace (kept,
        /// and restorable with `stagegate restore`).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        creates: Vec<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        replaces: Vec<String>,
        at_ms: i64,
    },
    GateDecided {
        run_id: String,
        stage: String,
        decision: DecisionKind,
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        note: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        diff: Option<String>,
        at_ms: i64,
    },
    StageFinished {
        run_id: String,
        stage: String,
        end: StageEnd,
        duration_ms: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        at_ms: i64,
    },
    RunFinished {
        run_id: String,
        end: StageEnd,
        at_ms: i64,
    },
    /// A kind this build does not know, written by a newer stagegate. Never emitted; readers
    /// skip it.
    #[serde(other)]
    Unknown,
}

impl Event {
    /// The event's kind as serialized (`attempt_started`), for the store's index.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::RunStarted { .. } => "run_started",
            Event::StageStarted { .. } => "stage_started",
            Event::InputsScored { .. } => "inputs_scored",
            Event::ContextCut { .. } => "context_cut",
            Event::Adjusted { .. } => "adjusted",
            Event::AttemptStarted { .. } => "attempt_started",
            Event::AttemptFinished { .. } => "attempt_finished",
            Event::CacheHit { .. } => "cache_hit",
            Event::RetryScheduled { .. } => "retry_scheduled",
            Event::AnswerTruncated { .. } => "answer_truncated",
            Event::ReasoningStripped { .. } => "reasoning_stripped",
            Event::FallbackStarted { .. } => "fallback_started",
            Event::QuorumMet { .. } => "quorum_met",
            Event::QuorumLost { .. } => "quorum_lost",
            Event::SequentialPassStarted { .. } => "sequential_pass_started",
            Event::AgentsFinished { .. } => "agents_finished",
            Event::ArtifactSynthesized { .. } => "artifact_synthesized",
            Event::QaVerdict { .. } => "qa_verdict",
            Event::GateRequested { .. } => "gate_requested",
            Event::GateWaiting { .. } => "gate_waiting",
            Event::GateDecided { .. } => "gate_decided",
            Event::StageFinished { .. } => "stage_finished",
            Event::RunFinished { .. } => "run_finished",
            Event::Unknown => "unknown",
        }
    }

    /// When it happened (milliseconds since the Unix epoch); `None` for [`Event::Unknown`].
    pub fn at_ms(&self) -> Option<i64> {
        match self {
            Event::RunStarted { at_ms, .. }
            | Event::StageStarted { at_ms, .. }
            | Event::InputsScored { at_ms, .. }
            | Event::ContextCut { at_ms, .. }
            | Event::Adjusted { at_ms, .. }
            | Event::AttemptStarted { at_ms, .. }
            | Event::AttemptFinished { at_ms, .. }
            | Event::CacheHit { at_ms, .. }
            | Event::RetryScheduled { at_ms, .. }
            | Event::AnswerTruncated { at_ms, .. }
            | Event::ReasoningStripped { at_ms, .. }
            | Event::FallbackStarted { at_ms, .. }
            | Event::QuorumMet { at_ms, .. }
            | Event::QuorumLost { at_ms, .. }
            | Event::SequentialPassStarted { at_ms, .. }
            | Event::AgentsFinished { at_ms, .. }
            | Event::ArtifactSynthesized { at_ms, .. }
            | Event::QaVerdict { at_ms, .. }
            | Event::GateRequested { at_ms, .. }
            | Event::GateWaiting { at_ms, .. }
            | Event::GateDecided { at_ms, .. }
            | Event::StageFinished { at_ms, .. }
            | Event::RunFinished { at_ms, .. } => Some(*at_ms),
            Event::Unknown => None,
        }
    }

    /// The run it belongs to; empty for [`Event::Unknown`].
    pub fn run_id(&self) -> &str {
        match self {
            Event::AttemptStarted { identity, .. }
            | Event::AttemptFinished { identity, .. }
            | Event::CacheHit { identity, .. }
            | Event::RetryScheduled { identity, .. }
            | Event::AnswerTruncated { identity, .. }
            | Event::ReasoningStripped { identity, .. } => &identity.run_id,
            Event::RunStarted { run_id, .. }
            | Event::StageStarted { run_id, .. }
            | Event::Adjusted { run_id, .. }
            | Event::InputsScored { run_id, .. }
            | Event::ContextCut { run_id, .. }
            | Event::FallbackStarted { run_id, .. }
            | Event::QuorumMet { run_id, .. }
            | Event::QuorumLost { run_id, .. }
            | Event::SequentialPassStarted { run_id, .. }
            | Event::AgentsFinished { run_id, .. }
            | Event::ArtifactSynthesized { run_id, .. }
            | Event::QaVerdict { run_id, .. }
            | Event::GateRequested { run_id, .. }
            | Event::GateWaiting { run_id, .. }
            | Event::GateDecided { run_id, .. }
            | Event::StageFinished { run_id, .. }
            | Event::RunFinished { run_id, .. } => run_id,
            Event::Unknown => "",
        }
    }
}

/// A consumer of the event stream. Events arrive one at a time, in order, from one task; an
/// error stops the run (a recorder that cannot record must not let the run go on).
pub trait EventSink {
    fn emit(&mut self, event: &Event) -> impl Future<Output = Result<(), SinkError>>;

    /// Takes several events at once, in order: what `emit` of each in turn would do. A sink
    /// that stores events may store them together (one group commit) but must have stored all
    /// of them when this returns, as `emit` would have.
    fn emit_all(&mut self, events: &[Event]) -> impl Future<Output = Result<(), SinkError>> {
        async move {
            for event in events {
                self.emit(event).await?;
            }
            Ok(())
        }
    }

    /// Takes events in order without waiting for them to be stored: the dispatcher uses it for
    /// what it does not act on yet (calls' progress and outcomes while a phase's slots are
    /// refilled). A sink that stores events must still store them in order with every other,
    /// and show none before it is stored; whatever acts on them first calls [`Self::settle`]
    /// (or `emit`s a later event, whose storing holds them too). The default is `emit_all`.
    fn queue_all(&mut self, events: Vec<Event>) -> impl Future<Output = Result<(), SinkError>> {
        async move { self.emit_all(&events).await }
    }

    /// Resolves once some queued events are stored, never while none waits; cancel-safe, so
    /// a dispatcher may wait for it beside its calls and then [`Self::show_stored`].
    fn stored(&mut self) -> impl Future<Output = ()> {
        std::future::pending()
    }

    /// Passes on the queued events already stored, in order; waits for nothing.
    fn show_stored(&mut self) -> impl Future<Output = Result<(), SinkError>> {
        async { Ok(()) }
    }

    /// Waits until every queued event is stored and passed on: what `emit_all` would have
    /// waited for.
    fn settle(&mut self) -> impl Future<Output = Result<(), SinkError>> {
        async { Ok(()) }
    }
}

/// Earlier outputs of identical calls, by cache key. The caller fills it (from the store's
/// cache, or a run's own finished work when it resumes); the engine only looks things up.
pub trait CallMemo: Send + Sync {
    fn lookup(&self, key: &str) -> Option<Arc<str>>;
}

impl CallMemo for std::collections::HashMap<String, Arc<str>> {
    fn lookup(&self, key: &str) -> Option<Arc<str>> {
        self.get(key).cloned()
    }
}

/// A subscriber could not take an event (typically: the state database could not be written).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct SinkError {
    pub message: String,
}

impl SinkError {
    pub fn new(message: impl Into<String>) -> Self {
        SinkError {
            message: message.into(),
        }
    }
}

/// Collects events in memory: for tests and benchmarks.
#[derive(Debug, Default)]
pub struct CollectingSink {
    pub events: Vec<Event>,
}

impl EventSink for CollectingSink {
    async fn emit(&mut self, event: &Event) -> Result<(), SinkError> {
        self.events.push(event.clone());
        Ok(())
    }
}

/// Drops every event: for benchmarks of the engine alone.
#[derive(Debug, Default)]
pub struct NullSink;

impl EventSink for NullSink {
    async fn emit(&mut self, _event: &Event) -> Result<(), SinkError> {
        Ok(())
    }
}

/// The `CONFIDENCE: 0.0..1.0` line an agent output may contain (the last one counts).
pub fn parse_confidence(output: &str) -> Option<f64> {
    output.lines().rev().find_map(|line| {
        let value = line.trim().strip_prefix("CONFIDENCE:")?.trim();
        let score: f64 = value.parse().ok()?;
        (0.0..=1.0).contains(&score).then_some(score)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Phase;

    #[test]
    fn confidence_is_parsed_from_the_last_valid_line() {
        assert_eq!(parse_confidence("a\nCONFIDENCE: 0.5\nb"), Some(0.5));
        assert_eq!(
            parse_confidence("CONFIDENCE: 0.2\n  CONFIDENCE: 0.9  "),
            Some(0.9)
        );
        assert_eq!(parse_confidence("CONFIDENCE: 1.5"), None);
        assert_eq!(parse_confidence("no score"), None);
    }

    #[test]
    fn events_serialize_as_one_tagged_object_without_large_texts() {
        let event = Event::AttemptStarted {
            identity: CallIdentity {
                run_id: "r1".into(),
                stage: "plan".into(),
                phase: crate::backend::Phase::Agent,
                agent: "requirements-analyst".into(),
                attempt: 1,
                artifact: None,
            },
            backend: "mock".into(),
            at_ms: 5,
            prompt: Arc::from("a very long prompt"),
            prompt_joints: Arc::default(),
        };
        let json = serde_json::to_string(&event).expect("serializes");
        assert!(json.contains(r#""event":"attempt_started""#), "{json}");
        assert!(json.contains(r#""agent":"requirements-analyst""#), "{json}");
        assert!(!json.contains("very long prompt"), "{json}");
        assert_eq!(event.kind(), "attempt_started");
    }

    fn identity(phase: Phase, agent: &str, artifact: Option<&str>) -> CallIdentity {
        CallIdentity {
            run_id: "r1".into(),
            stage: "plan".into(),
            phase,
            agent: agent.into(),
            attempt: 2,
            artifact: artifact.map(str::to_owned),
        }
    }

    /// One event of every kind, with every optional field set and every large text filled.
    fn one_of_each() -> Vec<Event> {
        let run_id = || "r1".to_owned();
        let stage = || "plan".to_owned();
        vec![
            Event::RunStarted {
                run_id: run_id(),
                feature_dir: "specs/001-demo".into(),
                stages: vec!["plan".into(), "prep".into()],
                at_ms: 1,
            },
            Event::StageStarted {
                run_id: run_id(),
                stage: stage(),
                name: "Stage A".into(),
                agents: vec!["a".into(), "b".into()],
                concurrency: 3,
                quorum_needed: 2,
                at_ms: 2,
            },
            Event::InputsScored {
                run_id: run_id(),
                stage: stage(),
                complexity: 62,
                uncertainty: 10,
                complexity_parts: "62/100 (requirements 11 → 12.8)".into(),
                uncertainty_parts: "10/100".into(),
                at_ms: 3,
            },
            Event::ContextCut {
                run_id: run_id(),
                stage: stage(),
                phase: Phase::Review,
                agent: "lead-reviewer-a".into(),
                artifact: Some("plan.md".into()),
                cuts: vec!["tasks.md was cut from 120 KB to 40 KB".into()],
                at_ms: 4,
            },
            Event::Adjusted {
                run_id: run_id(),
                stage: stage(),
                setting: "concurrency".into(),
                from: "3".into(),
                to: "2".into(),
                reason: "complexity 85 > 80".into(),
                at_ms: 5,
            },
            Event::AttemptStarted {
                identity: identity(Phase::Agent, "a", None),
                backend: "mock".into(),
                at_ms: 6,
                prompt: Arc::from("the prompt"),
                prompt_joints: Arc::default(),
            },
            Event::AttemptFinished {
                identity: identity(Phase::Synthesis, "s", Some("plan.md")),
                backend: "openai".into(),
                status: AttemptStatus::Failed,
                failure: Some(Failure::RateLimited {
                    message: "slow down".into(),
                    retry_after_ms: Some(250),
                }),
                duration_ms: 1500,
                output_bytes: 12,
                output_hash: Some("hash".into()),
                confidence: Some(0.75),
                usage: Some(Usage {
                    input_tokens: 100,
                    output_tokens: 20,
                    cost_usd: Some(0.004),
                }),
                cache_key: Some("key".into()),
                at_ms: 7,
                output: Arc::from("the output"),
                stderr: Arc::from(&b"the stderr"[..]),
            },
            Event::CacheHit {
                identity: identity(Phase::Qa, "main-agent", None),
                backend: "builtin".into(),
                cache_key: "key".into(),
                output_bytes: 3,
                output_hash: "hash".into(),
                confidence: None,
                at_ms: 8,
                prompt: Arc::from("the prompt"),
                prompt_joints: Arc::default(),
                output: Arc::from("the output"),
            },
            Event::RetryScheduled {
                identity: identity(Phase::Agent, "a", None),
                delay_ms: 1000,
                at_ms: 9,
            },
            Event::AnswerTruncated {
                identity: identity(Phase::Agent, "a", None),
                backend: "local".into(),
                cuts: 2,
                handling: crate::backend::TruncationHandling::Continued,
                at_ms: 9,
            },
            Event::ReasoningStripped {
                identity: identity(Phase::Synthesis, "s", Some("plan.md")),
                backend: "local".into(),
                reasoning: Reasoning {
                    tokens: Some(120),
                    chars: 480,
                },
                at_ms: 9,
            },
            Event::FallbackStarted {
                run_id: run_id(),
                stage: stage(),
                agent: "a".into(),
                from: "sonnet".into(),
                to: "local".into(),
                at_ms: 10,
            },
            Event::QuorumMet {
                run_id: run_id(),
                stage: stage(),
                succeeded: 3,
                needed: 3,
                total: 4,
                at_ms: 11,
            },
            Event::QuorumLost {
                run_id: run_id(),
                stage: stage(),
                reason: "too few".into(),
                at_ms: 12,
            },
            Event::SequentialPassStarted {
                run_id: run_id(),
                stage: stage(),
                agents: vec!["b".into()],
                at_ms: 13,
            },
            Event::AgentsFinished {
                run_id: run_id(),
                stage: stage(),
                succeeded: vec!["a".into()],
                failed: vec![AgentFailure {
                    agent: "b".into(),
                    reason: "exit 1".into(),
                }],
                at_ms: 14,
            },
            Event::ArtifactSynthesized {
                run_id: run_id(),
                stage: stage(),
                artifact: "plan.md".into(),
                iteration: 2,
                bytes: 40,
                hash: "hash".into(),
                at_ms: 15,
                content: Arc::from("# Plan"),
            },
            Event::QaVerdict {
                run_id: run_id(),
                stage: stage(),
                iteration: 1,
                verdict: Verdict::Rework,
                feedback: "more detail".into(),
                at_ms: 16,
            },
            Event::GateRequested {
                run_id: run_id(),
                stage: stage(),
                question: "Approve to proceed?".into(),
                artifacts: vec!["plan.md".into()],
                at_ms: 17,
            },
            Event::GateWaiting {
                run_id: run_id(),
                stage: stage(),
                commands: vec!["stagegate approve r1".into()],
                creates: vec!["planning-summary.md".into()],
                replaces: vec!["plan.md".into()],
                at_ms: 18,
            },
            Event::GateDecided {
                run_id: run_id(),
                stage: stage(),
                decision: DecisionKind::Modify,
                reason: Some("reason".into()),
                note: Some("note".into()),
                diff: Some("--- a\n+++ b\n".into()),
                at_ms: 19,
            },
            Event::StageFinished {
                run_id: run_id(),
                stage: stage(),
                end: StageEnd::AwaitingDecision,
                duration_ms: 20,
                reason: Some("waiting".into()),
                at_ms: 20,
            },
            Event::RunFinished {
                run_id: run_id(),
                end: StageEnd::Interrupted,
                at_ms: 21,
            },
        ]
    }

    /// The event as it reads back: the texts that are not serialized are empty.
    fn without_texts(event: &Event) -> Event {
        let mut event = event.clone();
        match &mut event {
            Event::AttemptStarted { prompt, .. } => *prompt = Arc::default(),
            Event::AttemptFinished { output, stderr, .. } => {
                *output = Arc::default();
                *stderr = Arc::default();
            }
            Event::CacheHit { prompt, output, .. } => {
                *prompt = Arc::default();
                *output = Arc::default();
            }
            Event::ArtifactSynthesized { content, .. } => *content = Arc::default(),
            _ => {}
        }
        event
    }

    #[test]
    fn every_kind_reads_back_as_it_was_written_but_the_large_texts() {
        let events = one_of_each();
        let kinds: std::collections::BTreeSet<&str> = events.iter().map(Event::kind).collect();
        // One of each kind but `Unknown`: a new kind needs its sample here.
        assert_eq!(kinds.len(), events.len());
        assert_eq!(kinds.len(), 23, "{kinds:?}");
        for event in &events {
            let json = serde_json::to_string(event).expect("serializes");
            let back: Event = serde_json::from_str(&json).unwrap_or_else(|error| {
                panic!("{} does not read back: {error}\n{json}", event.kind())
            });
            assert_eq!(back, without_texts(event), "{json}");
            assert_eq!(back.kind(), event.kind());
            assert_eq!(back.run_id(), "r1");
            assert!(back.at_ms().is_some());
        }
    }

    /// `docs/events.schema.json` describes exactly the fields each kind serializes: a field
    /// added or renamed on either side, or one the schema requires but the event may leave out,
    /// fails here. (The binary's tests validate real `--json` output against the same file.)
    #[test]
    fn the_published_schema_has_every_kind_and_field() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/events.schema.json");
        let text = std::fs::read_to_string(&path).expect("docs/events.schema.json");
        let schema: serde_json::Value = serde_json::from_str(&text).expect("the schema is JSON");
        let definitions = schema["$defs"].as_object().expect("$defs");
        for event in one_of_each() {
            let json = serde_json::to_value(&event).expect("serializes");
            let mut fields: Vec<&str> = json
                .as_object()
                .expect("an object")
                .keys()
                .map(String::as_str)
                .chain(["version"])
                .collect();
            fields.sort_unstable();
            let definition = definitions
                .get(event.kind())
                .unwrap_or_else(|| panic!("the schema has no {}", event.kind()));
            let mut described: Vec<&str> = definition["properties"]
                .as_object()
                .expect("properties")
                .keys()
                .map(String::as_str)
                .collect();
            described.sort_unstable();
            let required: Vec<&str> = definition["required"]
                .as_array()
                .expect("required")
                .iter()
                .filter_map(serde_json::Value::as_str)
                .collect();
            for field in &fields {
                assert!(
                    described.contains(field),
                    "{}: {field} is not in the schema",
                    event.kind()
                );
            }
            for field in &described {
                assert!(
                    fields.contains(field) || !required.contains(field),
                    "{}: the schema requires {field}, which is not serialized",
                    event.kind()
                );
            }
        }
    }

    #[test]
    fn every_failure_reads_back() {
        for failure in [
            Failure::TimedOut { after_ms: 3000 },
            Failure::Cancelled,
            Failure::retryable("exit status 1"),
            Failure::RateLimited {
                message: "429".into(),
                retry_after_ms: None,
            },
            Failure::permanent("no such program"),
        ] {
            let json = serde_json::to_string(&failure).expect("serializes");
            let back: Failure = serde_json::from_str(&json).expect("reads back");
            assert_eq!(back, failure, "{json}");
        }
    }

    #[test]
    fn a_kind_from_a_newer_stagegate_reads_as_unknown() {
        let json = r#"{"event":"gate_escalated","run_id":"r1","to":"someone","at_ms":5}"#;
        let event: Event = serde_json::from_str(json).expect("an unknown kind still reads");
        assert_eq!(event, Event::Unknown);
        assert_eq!(event.kind(), "unknown");
        assert_eq!(event.at_ms(), None);
        assert_eq!(event.run_id(), "");
    }

    #[test]
    fn fields_a_newer_stagegate_added_are_ignored() {
        let json = r#"{"event":"run_finished","run_id":"r1","end":"approved","at_ms":5,"version":2,"cost":1.5}"#;
        let event: Event = serde_json::from_str(json).expect("reads");
        assert_eq!(
            event,
            Event::RunFinished {
                run_id: "r1".into(),
                end: StageEnd::Approved,
                at_ms: 5
            }
        );
    }
}
