//! The one stream of events at the core of a run.
//!
//! The engine produces these and acts on nothing else; subscribers (terminal display, `--json`
//! printer, the store's recorder, metrics) consume them through an [`EventSink`]. Large texts
//! (prompts, outputs, artifacts) travel with the event in memory for the recorder but are not
//! serialized: the JSON form stays one short line per event.

use std::future::Future;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::backend::{CallIdentity, Failure, Usage};

/// Milliseconds since the Unix epoch, the timestamp of every event.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// How one attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Rework,
}

/// A gate decision as it travels in events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionKind {
    Approve,
    Reject,
    Modify,
}

impl DecisionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DecisionKind::Approve => "approve",
            DecisionKind::Reject => "reject",
            DecisionKind::Modify => "modify",
        }
    }
}

/// How a stage ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StageEnd {
    Approved,
    Rejected,
    AwaitingDecision,
    Failed,
    Interrupted,
}

/// An agent that did not succeed, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentFailure {
    pub agent: String,
    pub reason: String,
}

/// Everything that happens in a run.
#[derive(Debug, Clone, Serialize)]
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
        #[serde(skip)]
        output: Arc<str>,
    },
    RetryScheduled {
        #[serde(flatten)]
        identity: CallIdentity,
        delay_ms: u64,
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
        }
    }
}

/// A consumer of the event stream. Events arrive one at a time, in order, from one task; an
/// error stops the run (a recorder that cannot record must not let the run go on).
pub trait EventSink {
    fn emit(&mut self, event: &Event) -> impl Future<Output = Result<(), SinkError>>;
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
        };
        let json = serde_json::to_string(&event).expect("serializes");
        assert!(json.contains(r#""event":"attempt_started""#), "{json}");
        assert!(json.contains(r#""agent":"requirements-analyst""#), "{json}");
        assert!(!json.contains("very long prompt"), "{json}");
        assert_eq!(event.kind(), "attempt_started");
    }
}
