//! The validated, fully resolved settings that the rest of stagegate consumes.
//!
//! Everything here has already been layered (embedded seed defaults → `stagegate.toml` →
//! environment → flags) and checked: every name a stage or agent refers to exists, every
//! number is in range. Consumers never see an `Option` that means "not configured".

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The whole configuration after layering and validation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    pub defaults: Defaults,
    pub timeouts: Timeouts,
    /// `[cache]`: how long answers are reused.
    pub cache: CacheTtls,
    /// `[adaptive]`: the thresholds of the seed's adaptive rules.
    pub adaptive: AdaptiveRules,
    /// `[prices.BACKEND]`: what a backend's tokens cost; backends without one cost nothing.
    pub prices: BTreeMap<String, Price>,
    /// Backends by name. Always holds at least `builtin` and `mock` (from the embedded defaults).
    pub backends: BTreeMap<String, BackendSettings>,
    /// Stages by id: the three built-in ones (`plan`, `prep`, `analyze`) and any of the user's.
    pub stages: BTreeMap<String, StageSettings>,
    /// Agents by id: every role agent, reviewer, synthesizer and the main agent (`main-agent`).
    pub agents: BTreeMap<String, AgentSettings>,
    /// The stages `stagegate run all` runs, in order (`plan`, `prep`, `analyze`).
    pub pipeline: Vec<String>,
    /// `[cluster]`: the Temporal cluster runs go to; `None` runs them in this process.
    pub cluster: Option<ClusterSettings>,
    /// Where each value came from, for `stagegate status` and errors: `(key path, source)`.
    /// An agent that takes `defaults.backend` has no entry of its own (a stage of 10,000 agents
    /// would hold 10,000 copies of one origin): [`Settings::origin_of`] answers for it.
    pub origins: BTreeMap<String, Origin>,
}

/// Where a resolved value was set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Origin {
    /// The embedded seed defaults.
    Default,
    /// A configuration file, with the 1-based line of the key.
    File {
        path: std::path::PathBuf,
        line: usize,
    },
    /// An environment variable, by name.
    Environment(String),
    /// A command-line flag, by name (`--concurrency`).
    Flag(String),
}

/// `[defaults]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Defaults {
    /// The backend of every agent, reviewer, synthesizer and QA unless overridden.
    pub backend: String,
    /// Parallel agents at once.
    pub concurrency: usize,
    /// Further attempts after a failure.
    pub retries: u32,
    /// Wait before retry k is `backoff * 2^(k-1)` (plus up to 10 % jitter).
    pub backoff: Duration,
    /// Quorum: the share of a stage's agents that must succeed, in `0.0..=1.0`.
    pub min_success_ratio: f64,
    /// How many times a QA `VERDICT: REWORK` sends its feedback back to the synthesizer.
    pub synthesis_iterations: u32,
    /// An agent output larger than this fails the attempt (bytes; `output_cap = "1MiB"`).
    pub output_cap_bytes: u64,
    /// `RLIMIT_DATA` for program agents, bytes (256 MB).
    pub agent_memory_bytes: u64,
    /// `RLIMIT_DATA` for agents marked `large_context = true`, bytes (512 MB).
    pub large_context_memory_bytes: u64,
}

/// `[timeouts]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Timeouts {
    pub default: Duration,
    pub complex_analysis: Duration,
    pub simple_check: Duration,
    pub review: Duration,
    pub synthesis: Duration,
    pub qa: Duration,
    /// The whole stage, the gate's waiting excluded.
    pub stage: Duration,
    /// Between SIGTERM and SIGKILL when a program agent is stopped.
    pub kill_grace: Duration,
}

impl Timeouts {
    /// The per-attempt timeout of an agent of this class.
    pub fn for_class(&self, class: TimeoutClass) -> Duration {
        match class {
            TimeoutClass::Default => self.default,
            TimeoutClass::ComplexAnalysis => self.complex_analysis,
            TimeoutClass::SimpleCheck => self.simple_check,
        }
    }
}

/// `[cluster]`: a Temporal frontend, the namespace and the task queue stagegate's workers
/// listen on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterSettings {
    /// `host:port` of the frontend (`cluster.temporal`, `STAGEGATE_TEMPORAL_ADDRESS`,
    /// `--temporal`).
    pub temporal: String,
    pub namespace: String,
    pub task_queue: String,
    /// The repository's name among those workers serve (`stagegate worker --repo NAME=PATH`):
    /// with it, attempts of `command` agents run only on workers with this checkout.
    pub repository: Option<String>,
}

/// `[cache]`: time to live of a cached answer, per phase (seed: agent outputs 15 min, reviews
/// 10 min, syntheses 30 min). Zero turns caching off for the phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CacheTtls {
    pub agent: Duration,
    pub review: Duration,
    pub synthesis: Duration,
    pub qa: Duration,
}

/// `[adaptive]`: when the seed's adaptive rules change a stage's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdaptiveRules {
    pub enabled: bool,
    /// Complexity score (0–100) above which a stage runs as "high complexity".
    pub complexity_threshold: u32,
    /// Uncertainty score (0–100) above which a stage gets a discovery step.
    pub uncertainty_threshold: u32,
    /// Share of failed agents, while a stage runs, above which its concurrency is lowered.
    pub failure_rate: f64,
    /// Share of timed-out attempts above which the remaining timeouts are raised.
    pub timeout_rate: f64,
}

/// What a million tokens cost on a backend, in the currency the user thinks in (USD usually).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Price {
    pub input_per_mtok: f64,
    pub output_per_mtok: f64,
}

impl Price {
    pub fn cost(&self, input_tokens: i64, output_tokens: i64) -> f64 {
        (input_tokens.max(0) as f64 * self.input_per_mtok
            + output_tokens.max(0) as f64 * self.output_per_mtok)
            / 1_000_000.0
    }
}

/// `timeout_class` of an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum TimeoutClass {
    #[default]
    Default,
    ComplexAnalysis,
    SimpleCheck,
}

/// `[backends.NAME]`, by `kind`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum BackendSettings {
    /// Offline, deterministic analysts written in Rust.
    Builtin,
    /// A program: the prompt on stdin, the output on stdout, exit 0 = success. Never a shell.
    Command {
        /// Program and its arguments; never empty.
        command: Vec<String>,
        /// Extra environment variables for the program.
        env: BTreeMap<String, String>,
        /// Variables whose values are secrets (`secret_env`): names from `env`, or variables
        /// the program inherits from stagegate's environment. Their values are redacted from
        /// everything stagegate stores, shows or publishes.
        secret_env: Vec<String>,
        /// How to read the program's stdout.
        output_format: OutputFormat,
        /// The spec-kit integration key (`claude`, `cursor-agent`) whose
        /// `SPECKIT_INTEGRATION_<KEY>_EXECUTABLE` and `_EXTRA_ARGS` variables apply to the
        /// command when the backend is built.
        speckit_integration: Option<String>,
        /// `model`: passed as `--model NAME` (where spec-kit puts it: before the output flags);
        /// `None` leaves the choice to the agent's own configuration.
        model: Option<String>,
        /// `memory`: the cap on what the agent's process tree really uses, bytes; replaces
        /// `defaults.agent_memory` (and `large_context_memory`) for attempts on this backend.
        memory_bytes: Option<u64>,
    },
    /// OpenAI-compatible chat completions.
    OpenAi {
        base_url: String,
        model: String,
        /// Name of the variable holding the key, never the key itself.
        api_key_env: Option<String>,
        temperature: Option<f64>,
        max_tokens: Option<u32>,
        /// Which OpenAI endpoint it speaks (`api`).
        api: OpenAiApi,
        http: HttpOptions,
    },
    /// Anthropic's Messages API.
    Anthropic {
        base_url: String,
        model: String,
        api_key_env: String,
        max_tokens: u32,
        http: HttpOptions,
    },
    /// No model: answers after `latency`, fails the first `fail_attempts` attempts of each agent.
    Mock {
        latency: Duration,
        fail_attempts: u32,
        /// Fixed output; when absent the mock writes a short deterministic text naming the call.
        output: Option<String>,
    },
}

/// What the HTTP backends (`openai`, `anthropic`) share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpOptions {
    /// How long an answer may send nothing before the attempt fails as stalled
    /// (`idle_timeout`, 60 s).
    pub idle_timeout: Duration,
    /// What a model that stops at its output-token limit gets (`on_truncation`).
    pub on_truncation: OnTruncation,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            idle_timeout: Duration::from_secs(60),
            on_truncation: OnTruncation::Continue,
        }
    }
}

/// `on_truncation`: what to do with an answer cut at the model's output-token limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum OnTruncation {
    /// Ask the model to go on where it stopped, a few times; still cut after that, the attempt
    /// fails.
    #[default]
    Continue,
    /// Fail the attempt (permanently: the same request would be cut again).
    Fail,
    /// Keep the cut answer; the later phases, the summary and `status` say it is incomplete.
    Accept,
}

impl OnTruncation {
    pub const ALL: [OnTruncation; 3] = [
        OnTruncation::Continue,
        OnTruncation::Fail,
        OnTruncation::Accept,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OnTruncation::Continue => "continue",
            OnTruncation::Fail => "fail",
            OnTruncation::Accept => "accept",
        }
    }
}

/// `api` of an `openai` backend: the endpoint it speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum OpenAiApi {
    /// `POST {base_url}/chat/completions`, which every OpenAI-compatible server speaks.
    #[default]
    ChatCompletions,
    /// `POST {base_url}/responses`, OpenAI's Responses API, for models that only speak it.
    Responses,
}

impl OpenAiApi {
    pub const ALL: [OpenAiApi; 2] = [OpenAiApi::ChatCompletions, OpenAiApi::Responses];

    pub fn as_str(self) -> &'static str {
        match self {
            OpenAiApi::ChatCompletions => "chat-completions",
            OpenAiApi::Responses => "responses",
        }
    }
}

/// `output_format` of a `command` backend: what its stdout holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum OutputFormat {
    /// The answer itself.
    #[default]
    Text,
    /// `claude -p --output-format json`'s result envelope (`{"type":"result","result":…}`);
    /// `cursor-agent -p --output-format json` writes the same shape.
    ClaudeJson,
    /// `gemini --output-format json`'s object (`{"response":…,"stats":…}`).
    GeminiJson,
    /// `qwen --output-format json`'s array of messages ending in a Claude-style `result` object.
    QwenJson,
    /// `codex exec --json`'s event lines (`item.completed`, `turn.completed`, `turn.failed`).
    CodexJsonl,
    /// `opencode run --format json`'s event lines (`text`, `step_finish`, `error`).
    OpencodeJsonl,
}

impl OutputFormat {
    /// Every format, in the order the documentation lists them.
    pub const ALL: [OutputFormat; 6] = [
        OutputFormat::Text,
        OutputFormat::ClaudeJson,
        OutputFormat::GeminiJson,
        OutputFormat::QwenJson,
        OutputFormat::CodexJsonl,
        OutputFormat::OpencodeJsonl,
    ];

    /// The name as written in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            OutputFormat::Text => "text",
            OutputFormat::ClaudeJson => "claude-json",
            OutputFormat::GeminiJson => "gemini-json",
            OutputFormat::QwenJson => "qwen-json",
            OutputFormat::CodexJsonl => "codex-jsonl",
            OutputFormat::OpencodeJsonl => "opencode-jsonl",
        }
    }

    /// The format with this configuration name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|format| format.as_str() == name)
    }
}

impl BackendSettings {
    /// The `kind` as written in the configuration.
    pub fn kind(&self) -> &'static str {
        match self {
            BackendSettings::Builtin => "builtin",
            BackendSettings::Command { .. } => "command",
            BackendSettings::OpenAi { .. } => "openai",
            BackendSettings::Anthropic { .. } => "anthropic",
            BackendSettings::Mock { .. } => "mock",
        }
    }
}

/// `[stages.ID]`, merged over the built-in definition when the id is a built-in stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageSettings {
    pub id: String,
    /// Human name: "Stage A: Planning/Spec".
    pub name: String,
    /// Short alias accepted on the command line (`a`, `b`, `c`).
    pub alias: Option<String>,
    /// spec-kit command this stage belongs to (`/speckit.plan`), informational.
    pub trigger: Option<String>,
    /// The parallel role agents, in order.
    pub agents: Vec<String>,
    pub reviewer: String,
    pub synthesizer: String,
    /// The main agent that checks the artifacts (`main-agent`).
    pub qa: String,
    /// Artifacts the synthesizer must write, e.g. `plan.md`.
    pub required: Vec<String>,
    /// Artifacts it may write; names ending in `/` are directories.
    pub optional: Vec<String>,
    /// Feature files that must exist (and be approved, if a gate made them) before the stage runs.
    pub inputs: Vec<String>,
    /// The gate's question.
    pub question: String,
    /// Parallel agents at once in this stage.
    pub concurrency: usize,
    /// The summary artifact that partial failures are written into (`planning-summary.md`);
    /// defaults to the first required artifact.
    pub summary_artifact: String,
}

/// `[agents.ID]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentSettings {
    pub id: String,
    /// Human role name: "Requirements Analyst".
    pub role: String,
    /// What the role does, put into its prompt.
    pub task: String,
    /// Backend name; resolved (never empty): the agent's own, else `defaults.backend`.
    pub backend: String,
    /// Backend used when every attempt on `backend` fails.
    pub fallback: Option<String>,
    pub timeout_class: TimeoutClass,
    /// Must succeed for the quorum to hold.
    pub required: bool,
    /// Gets the large-context memory limit.
    pub large_context: bool,
    /// Overrides `defaults.retries` for this agent.
    pub retries: Option<u32>,
}

impl Settings {
    /// The stage with this id or alias (`plan` or `a`).
    pub fn stage(&self, id_or_alias: &str) -> Option<&StageSettings> {
        self.stages.get(id_or_alias).or_else(|| {
            self.stages
                .values()
                .find(|stage| stage.alias.as_deref() == Some(id_or_alias))
        })
    }
}

impl Settings {
    /// The agent with this id.
    pub fn agent(&self, id: &str) -> Option<&AgentSettings> {
        self.agents.get(id)
    }

    /// Where the value at `key` came from: its own entry in [`Settings::origins`], or for the
    /// backend of an agent that takes `defaults.backend` (`agents.ID.backend`), that default's.
    pub fn origin_of(&self, key: &str) -> Option<&Origin> {
        if let Some(origin) = self.origins.get(key) {
            return Some(origin);
        }
        let agent = key.strip_prefix("agents.")?.strip_suffix(".backend")?;
        self.agents
            .contains_key(agent)
            .then(|| self.origins.get("defaults.backend"))
            .flatten()
    }

    /// The backend an agent runs on (its own, else `defaults.backend`; both validated to exist).
    pub fn backend_of(&self, agent: &AgentSettings) -> Option<&BackendSettings> {
        self.backends.get(&agent.backend)
    }

    /// The per-attempt timeout of an agent, from its `timeout_class`.
    pub fn attempt_timeout(&self, agent: &AgentSettings) -> Duration {
        self.timeouts.for_class(agent.timeout_class)
    }

    /// Further attempts after a failure: the agent's own `retries`, else `defaults.retries`.
    pub fn retries_of(&self, agent: &AgentSettings) -> u32 {
        agent.retries.unwrap_or(self.defaults.retries)
    }

    /// `RLIMIT_DATA` for a program agent, bytes.
    pub fn memory_limit_of(&self, agent: &AgentSettings) -> u64 {
        if agent.large_context {
            self.defaults.large_context_memory_bytes
        } else {
            self.defaults.agent_memory_bytes
        }
    }
}

impl std::fmt::Display for Origin {
    /// `default`, `stagegate.toml:12`, `environment STAGEGATE_RETRIES`, `flag --concurrency`:
    /// how `stagegate status` says where a value came from.
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Default => formatter.write_str("default"),
            Origin::File { path, line } => write!(formatter, "{}:{line}", path.display()),
            Origin::Environment(variable) => write!(formatter, "environment {variable}"),
            Origin::Flag(flag) => write!(formatter, "flag {flag}"),
        }
    }
}
