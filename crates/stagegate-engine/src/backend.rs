//! The agent backend boundary: one call, `run(request) -> outcome`.
//!
//! The engine never knows which backend it talks to. A request carries the rendered prompt,
//! who is asking (stage, phase, agent, attempt, artifact) and the limits (deadline, memory,
//! output cap, cancellation); an outcome carries the text and usage, or a classified failure
//! that tells the retry policy whether trying again can help.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::event::AgentFailure;
use crate::prompt::{AgentOutputView, NamedText};

/// The boxed future a backend returns: `Send + 'static` so attempts run as their own tasks.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// A way of asking an agent something.
pub trait Backend: Send + Sync {
    /// The backend's kind (`command`, `mock`, ...), for events and metrics.
    fn kind(&self) -> &'static str;

    /// What identifies this backend's answers beyond its kind (program and arguments, model,
    /// settings), for cache keys: two backends with the same fingerprint answer alike.
    fn fingerprint(&self) -> String {
        self.kind().to_owned()
    }

    /// The memory one attempt may take outside this process, given the agent's cap: a backend
    /// that runs a program (a CLI coding agent) needs room for it; one that answers in-process
    /// or over the network needs none. The adaptive rule for short resources counts this.
    fn memory_per_attempt(&self, _agent_limit_bytes: u64) -> u64 {
        0
    }

    /// Runs one attempt. Must return by `request.deadline` (as [`Failure::TimedOut`]) and
    /// soon after `request.cancel` fires (as [`Failure::Cancelled`]), leaving nothing running.
    fn run(&self, request: AgentRequest) -> BoxFuture<AgentOutcome>;

    /// Runs one attempt like [`Backend::run`], with what the backend noticed about the answer
    /// beyond its text (a cut at the token limit, reasoning taken out). Backends that notice
    /// nothing keep this default.
    fn run_noted(&self, request: AgentRequest) -> BoxFuture<NotedOutcome> {
        let run = self.run(request);
        Box::pin(async move {
            NotedOutcome {
                outcome: run.await,
                notes: AnswerNotes::default(),
            }
        })
    }
}

/// An attempt's outcome and the backend's notes on its answer.
///
/// The notes travel beside the outcome (not in it) so that the backends that have none, and
/// the code that builds outcomes, stay as they are.
#[derive(Debug, Clone)]
pub struct NotedOutcome {
    pub outcome: AgentOutcome,
    pub notes: AnswerNotes,
}

/// What a backend noticed about an answer: each becomes an event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AnswerNotes {
    /// The model stopped at its output-token limit at least once.
    pub truncation: Option<Truncation>,
    /// The model reasoned before answering, and that reasoning was taken out of the answer.
    pub reasoning: Option<Reasoning>,
}

/// A model that stopped at its output-token limit (`finish_reason: "length"`,
/// `stop_reason: "max_tokens"`), and what was done about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Truncation {
    /// How many times the answer was cut (1 + the continuations that were cut again).
    pub cuts: u32,
    pub handling: TruncationHandling,
}

/// What the backend's `on_truncation` setting did with a cut answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TruncationHandling {
    /// The model was asked to go on until the answer was whole.
    Continued,
    /// The attempt failed: the answer was cut (and stayed cut after the continuations allowed).
    Failed,
    /// The cut answer was kept, marked incomplete.
    Accepted,
}

impl TruncationHandling {
    pub fn as_str(self) -> &'static str {
        match self {
            TruncationHandling::Continued => "continued",
            TruncationHandling::Failed => "failed",
            TruncationHandling::Accepted => "accepted",
        }
    }

    /// What happened, for a person: "continued until whole", "attempt failed", "kept incomplete".
    pub fn describe(self) -> &'static str {
        match self {
            TruncationHandling::Continued => "continued until whole",
            TruncationHandling::Failed => "attempt failed",
            TruncationHandling::Accepted => "kept incomplete",
        }
    }
}

/// Reasoning a model did before its answer (`reasoning_content`, `<think>` blocks, thinking
/// blocks), kept out of the answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reasoning {
    /// Reasoning tokens, when the server reported them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens: Option<u64>,
    /// Characters of reasoning text taken out of the answer.
    pub chars: u64,
}

/// The phase of a stage an agent call belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Agent,
    Review,
    Synthesis,
    Qa,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Agent => "agent",
            Phase::Review => "review",
            Phase::Synthesis => "synthesis",
            Phase::Qa => "qa",
        }
    }
}

/// Who is being asked, for the agent's environment (`STAGEGATE_*`), events and file names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallIdentity {
    pub run_id: String,
    pub stage: String,
    pub phase: Phase,
    pub agent: String,
    /// 1, 2, ... across the primary backend, its fallback and the sequential pass.
    pub attempt: u32,
    /// The artifact a synthesis call writes (`plan.md`).
    pub artifact: Option<String>,
}

/// One call to an agent.
#[derive(Debug, Clone)]
pub struct AgentRequest {
    pub identity: CallIdentity,
    /// The rendered prompt.
    pub prompt: Arc<str>,
    /// The repository root: a program agent's working directory.
    pub repo_root: PathBuf,
    /// The feature directory (`specs/001-name`), for `STAGEGATE_FEATURE_DIR`.
    pub feature_dir: PathBuf,
    /// When this attempt must have ended (counted from its start).
    pub deadline: Instant,
    /// Fires on Ctrl-C or when the stage as a whole runs out of time.
    pub cancel: CancellationToken,
    /// `RLIMIT_DATA` for program agents, bytes.
    pub memory_limit_bytes: u64,
    /// Largest accepted output, bytes; more is a failed attempt, not a crash.
    pub output_cap_bytes: u64,
    /// Between SIGTERM and SIGKILL when a program agent is stopped.
    pub kill_grace: Duration,
    /// The structured material the prompt was rendered from, for backends that work on it
    /// directly instead of on text (the built-in analysts).
    pub materials: Arc<CallMaterials>,
}

/// What a call is about, structured: the same things its prompt template was given.
#[derive(Debug, Clone, Default)]
pub struct CallMaterials {
    pub stage_name: String,
    pub role: String,
    pub task: String,
    /// The artifacts the stage must write.
    pub required: Vec<String>,
    /// The feature files the stage reads (spec.md, plan.md, tasks.md, …).
    pub inputs: Arc<Vec<NamedText>>,
    /// Earlier role agents' outputs (review, synthesis, QA): one copy shared by every call of
    /// a stage that reads them.
    pub outputs: Arc<[AgentOutputView]>,
    pub failures: Vec<AgentFailure>,
    pub review: Option<String>,
    /// The artifact a synthesis writes.
    pub artifact: Option<String>,
    /// The synthesized artifacts (QA).
    pub artifacts: Vec<NamedText>,
    /// QA's or a person's feedback on a rework.
    pub feedback: Option<String>,
    /// A person's comments on lines of the artifact this synthesis rewrites.
    pub comments: Vec<crate::line_comment::LineComment>,
    /// The artifact's previous version on a rework.
    pub previous: Option<String>,
    /// Extra instructions from the adaptive rules for this phase.
    pub guidance: Vec<String>,
    /// The discovery step's unknowns and assumptions, when the inputs were uncertain.
    pub discovery: Option<String>,
}

/// Tokens a model reported for one call, and what the call cost when the agent says so.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// The cost in US dollars as the agent itself reported it (Claude Code's `total_cost_usd`,
    /// opencode's `step_finish` costs); preferred over `[prices]`, which only estimate it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
}

/// What one attempt produced.
#[derive(Debug, Clone)]
pub struct AgentOutcome {
    pub result: Result<String, Failure>,
    /// What the agent wrote on stderr (program agents), bounded; kept for debugging.
    pub stderr: Vec<u8>,
    pub usage: Option<Usage>,
}

impl AgentOutcome {
    pub fn success(text: String) -> Self {
        AgentOutcome {
            result: Ok(text),
            stderr: Vec::new(),
            usage: None,
        }
    }

    pub fn failure(failure: Failure) -> Self {
        AgentOutcome {
            result: Err(failure),
            stderr: Vec::new(),
            usage: None,
        }
    }
}

/// Why an attempt failed, classified for the retry policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Failure {
    /// The attempt ran past its deadline and was stopped.
    #[error("timed out after {after_ms} ms")]
    TimedOut { after_ms: u64 },
    /// Ctrl-C or the stage's own deadline stopped it.
    #[error("cancelled")]
    Cancelled,
    /// The agent answered with a failure that may pass on another try
    /// (non-zero exit, 5xx, a dropped connection).
    #[error("{message}")]
    Retryable { message: String },
    /// Rate limited; the server asked to wait this long before the next try.
    #[error("rate limited: {message}")]
    RateLimited {
        message: String,
        retry_after_ms: Option<u64>,
    },
    /// Trying again cannot help (missing program, bad request, output over the cap).
    #[error("{message}")]
    Permanent { message: String },
}

impl Failure {
    pub fn retryable(message: impl Into<String>) -> Self {
        Failure::Retryable {
            message: message.into(),
        }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        Failure::Permanent {
            message: message.into(),
        }
    }

    /// The text of a failure that has one (retryable, rate limited, permanent).
    pub fn message_mut(&mut self) -> Option<&mut String> {
        match self {
            Failure::Retryable { message }
            | Failure::Permanent { message }
            | Failure::RateLimited { message, .. } => Some(message),
            Failure::TimedOut { .. } | Failure::Cancelled => None,
        }
    }

    /// Whether another attempt on the same backend may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Failure::TimedOut { .. } | Failure::Retryable { .. } | Failure::RateLimited { .. }
        )
    }

    /// A short machine-readable reason for metrics (`failure_reason`).
    pub fn reason_code(&self) -> &'static str {
        match self {
            Failure::TimedOut { .. } => "timed_out",
            Failure::Cancelled => "cancelled",
            Failure::Retryable { .. } => "error",
            Failure::RateLimited { .. } => "rate_limited",
            Failure::Permanent { .. } => "permanent",
        }
    }
}
