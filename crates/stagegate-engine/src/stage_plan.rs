//! A stage's settings resolved into what the loop runs: every agent with its backend handle,
//! timeout, retry policy and limits. Resolved once before the stage starts, so the loop
//! never looks at configuration again.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use stagegate_settings::{AgentSettings, BackendSettings, Settings, StageSettings};

use crate::adaptive::Adaptation;
use crate::backend::Backend;
use crate::command_agent::{CommandAgent, CommandAgentError, apply_speckit_integration};
use crate::headless_arguments::insert_before_output_flags;
use crate::mock_agent::MockAgent;
use crate::retry_policy::RetryPolicy;

/// A backend by name, ready to call.
#[derive(Clone)]
pub struct BackendHandle {
    pub name: String,
    pub backend: Arc<dyn Backend>,
}

impl std::fmt::Debug for BackendHandle {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{} ({})", self.name, self.backend.kind())
    }
}

/// One agent as the loop runs it.
#[derive(Debug, Clone)]
pub struct AgentPlan {
    pub id: String,
    pub role: String,
    pub task: String,
    pub backend: BackendHandle,
    pub fallback: Option<BackendHandle>,
    /// Per attempt, counted from its start.
    pub timeout: Duration,
    pub retry: RetryPolicy,
    pub required: bool,
    pub memory_limit_bytes: u64,
}

/// One stage as the loop runs it.
#[derive(Debug, Clone)]
pub struct StagePlan {
    pub id: String,
    pub name: String,
    pub question: String,
    pub required: Vec<String>,
    pub optional: Vec<String>,
    pub inputs: Vec<String>,
    pub summary_artifact: String,
    pub agents: Vec<AgentPlan>,
    pub reviewer: AgentPlan,
    pub synthesizer: AgentPlan,
    pub qa: AgentPlan,
    pub concurrency: usize,
    pub min_success_ratio: f64,
    /// The whole stage, the gate's waiting excluded.
    pub stage_timeout: Duration,
    /// How many times a QA REWORK verdict goes back to the synthesizer.
    pub synthesis_iterations: u32,
    pub output_cap_bytes: u64,
    pub kill_grace: Duration,
    /// What the adaptive rules changed and added (see `adaptive.rs`); empty by default.
    pub adaptation: Adaptation,
}

impl StagePlan {
    /// File artifacts the synthesizer is asked for: the required ones first, then the
    /// optional ones that are files (directories such as `contracts/` are not synthesized
    /// as one text).
    pub fn artifacts_to_synthesize(&self) -> impl Iterator<Item = (&str, bool)> {
        let required = self.required.iter().map(|name| (name.as_str(), true));
        let optional = self
            .optional
            .iter()
            .filter(|name| !name.ends_with('/'))
            .map(|name| (name.as_str(), false));
        required.chain(optional)
    }
}

/// A stage could not be prepared: a configuration problem, reported with exit code 2.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("unknown stage `{stage}`\nhint: the stages are {known}")]
    UnknownStage { stage: String, known: String },
    #[error(
        "stage `{stage}` names agent `{agent}`, which is not defined\nhint: add [agents.{agent}] with a role to stagegate.toml"
    )]
    UnknownAgent { stage: String, agent: String },
    #[error(
        "agent `{agent}` uses backend `{backend}`, which is not defined\nhint: add [backends.{backend}] to stagegate.toml"
    )]
    UnknownBackend { agent: String, backend: String },
    #[error(
        "agent `{agent}` uses backend `{backend}` of kind `{kind}`, which this build of stagegate cannot run yet\nhint: use a `command` backend (a CLI agent such as `claude -p`) or `mock` for a dry run, e.g. STAGEGATE_BACKEND=mock"
    )]
    UnavailableBackend {
        agent: String,
        backend: String,
        kind: String,
    },
    #[error("backend `{backend}`: {message}")]
    InvalidBackend { backend: String, message: String },
}

/// Builds a backend of a kind the engine itself does not implement (`builtin`, `openai`,
/// `anthropic` live in their own crates): `None` when the kind is not this factory's.
pub type BackendFactory =
    Box<dyn Fn(&str, &BackendSettings) -> Option<Result<Arc<dyn Backend>, String>> + Send + Sync>;

/// Builds each backend once, on first use, so that a backend nobody in the stage uses never
/// has to be runnable.
#[derive(Default)]
pub struct BackendRegistry {
    built: BTreeMap<String, Arc<dyn Backend>>,
    /// Replaces backends by name: tests and benchmarks inject their own.
    overrides: BTreeMap<String, Arc<dyn Backend>>,
    factories: Vec<BackendFactory>,
}

impl BackendRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Lets `factory` build the kinds it knows, before the engine's own.
    pub fn with_factory(mut self, factory: BackendFactory) -> Self {
        self.factories.push(factory);
        self
    }

    /// Uses `backend` whenever `name` is asked for.
    pub fn with_override(mut self, name: &str, backend: Arc<dyn Backend>) -> Self {
        self.overrides.insert(name.to_owned(), backend);
        self
    }

    pub fn resolve(
        &mut self,
        settings: &Settings,
        agent: &str,
        name: &str,
    ) -> Result<BackendHandle, PlanError> {
        if let Some(backend) = self.overrides.get(name).or_else(|| self.built.get(name)) {
            return Ok(BackendHandle {
                name: name.to_owned(),
                backend: backend.clone(),
            });
        }
        let backend_settings =
            settings
                .backends
                .get(name)
                .ok_or_else(|| PlanError::UnknownBackend {
                    agent: agent.to_owned(),
                    backend: name.to_owned(),
                })?;
        let from_factory = self
            .factories
            .iter()
            .find_map(|factory| factory(name, backend_settings));
        let backend = match from_factory {
            Some(Ok(backend)) => backend,
            Some(Err(message)) => {
                return Err(PlanError::InvalidBackend {
                    backend: name.to_owned(),
                    message,
                });
            }
            None => build_backend(agent, name, backend_settings)?,
        };
        self.built.insert(name.to_owned(), backend.clone());
        Ok(BackendHandle {
            name: name.to_owned(),
            backend,
        })
    }
}

fn build_backend(
    agent: &str,
    name: &str,
    settings: &BackendSettings,
) -> Result<Arc<dyn Backend>, PlanError> {
    match settings {
        BackendSettings::Command {
            command,
            env,
            secret_env,
            output_format,
            speckit_integration,
            model,
            memory_bytes,
        } => {
            let invalid = |error: CommandAgentError| PlanError::InvalidBackend {
                backend: name.to_owned(),
                message: error.to_string(),
            };
            // spec-kit's variables are read now, as the stage starts, like spec-kit reads them
            // each time it runs the agent.
            let command = match speckit_integration {
                Some(integration) => apply_speckit_integration(
                    command.clone(),
                    integration,
                    *output_format,
                    |variable| std::env::var(variable).ok(),
                )
                .map_err(invalid)?,
                None => command.clone(),
            };
            let mut command = command;
            if let Some(model) = model {
                insert_before_output_flags(
                    &mut command,
                    *output_format,
                    vec!["--model".to_owned(), model.clone()],
                );
            }
            CommandAgent::new(command, env.clone())
                .map(|agent| {
                    let agent = agent
                        .with_secret_env(secret_env)
                        .with_memory_cap(*memory_bytes);
                    Arc::new(agent.with_output_format(*output_format).named(name))
                        as Arc<dyn Backend>
                })
                .map_err(invalid)
        }
        BackendSettings::Mock {
            latency,
            fail_attempts,
            output,
        } => Ok(Arc::new(MockAgent::new(
            *latency,
            *fail_attempts,
            output.clone(),
        ))),
        BackendSettings::Builtin
        | BackendSettings::OpenAi { .. }
        | BackendSettings::Anthropic { .. } => Err(PlanError::UnavailableBackend {
            agent: agent.to_owned(),
            backend: name.to_owned(),
            kind: settings.kind().to_owned(),
        }),
    }
}

/// Resolves `stage` (an id or alias) into a runnable plan.
pub fn plan_stage(
    settings: &Settings,
    stage: &str,
    registry: &mut BackendRegistry,
) -> Result<StagePlan, PlanError> {
    // Every key and secret variable the settings name is known before any call: a cached
    // answer or another backend's error can repeat it too.
    crate::secrets::remember_from_settings(settings);
    let stage_settings = settings
        .stage(stage)
        .ok_or_else(|| PlanError::UnknownStage {
            stage: stage.to_owned(),
            known: settings
                .stages
                .keys()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(", "),
        })?;
    let timeouts = &settings.timeouts;
    let agent = |registry: &mut BackendRegistry, id: &str, timeout: Option<Duration>| {
        plan_agent(settings, stage_settings, id, timeout, registry)
    };
    let agents = stage_settings
        .agents
        .iter()
        .map(|id| agent(registry, id, None))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(StagePlan {
        id: stage_settings.id.clone(),
        name: stage_settings.name.clone(),
        question: stage_settings.question.clone(),
        required: stage_settings.required.clone(),
        optional: stage_settings.optional.clone(),
        inputs: stage_settings.inputs.clone(),
        summary_artifact: stage_settings.summary_artifact.clone(),
        agents,
        reviewer: agent(registry, &stage_settings.reviewer, Some(timeouts.review))?,
        synthesizer: agent(
            registry,
            &stage_settings.synthesizer,
            Some(timeouts.synthesis),
        )?,
        qa: agent(registry, &stage_settings.qa, Some(timeouts.qa))?,
        concurrency: stage_settings.concurrency.max(1),
        min_success_ratio: settings.defaults.min_success_ratio,
        stage_timeout: timeouts.stage,
        synthesis_iterations: settings.defaults.synthesis_iterations,
        output_cap_bytes: settings.defaults.output_cap_bytes,
        kill_grace: timeouts.kill_grace,
        adaptation: Adaptation::default(),
    })
}

fn plan_agent(
    settings: &Settings,
    stage: &StageSettings,
    id: &str,
    phase_timeout: Option<Duration>,
    registry: &mut BackendRegistry,
) -> Result<AgentPlan, PlanError> {
    let agent: &AgentSettings = settings
        .agents
        .get(id)
        .ok_or_else(|| PlanError::UnknownAgent {
            stage: stage.id.clone(),
            agent: id.to_owned(),
        })?;
    let backend = registry.resolve(settings, id, &agent.backend)?;
    let fallback = agent
        .fallback
        .as_deref()
        .map(|name| registry.resolve(settings, id, name))
        .transpose()?;
    let defaults = &settings.defaults;
    Ok(AgentPlan {
        id: agent.id.clone(),
        role: agent.role.clone(),
        task: agent.task.clone(),
        backend,
        fallback,
        timeout: phase_timeout.unwrap_or_else(|| settings.timeouts.for_class(agent.timeout_class)),
        retry: RetryPolicy::new(agent.retries.unwrap_or(defaults.retries), defaults.backoff),
        required: agent.required,
        memory_limit_bytes: if agent.large_context {
            defaults.large_context_memory_bytes
        } else {
            defaults.agent_memory_bytes
        },
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A stage of four mock agents, for unit tests of what works on plans.
    pub(crate) fn plan_with_mock(concurrency: usize) -> StagePlan {
        let backend = BackendHandle {
            name: "mock".into(),
            backend: Arc::new(MockAgent::new(Duration::ZERO, 0, None)),
        };
        let agent = |id: &str, timeout: u64| AgentPlan {
            id: id.into(),
            role: id.into(),
            task: format!("the task of {id}"),
            backend: backend.clone(),
            fallback: None,
            timeout: Duration::from_secs(timeout),
            retry: RetryPolicy::new(2, Duration::from_secs(1)),
            required: false,
            memory_limit_bytes: 256_000_000,
        };
        StagePlan {
            id: "plan".into(),
            name: "Stage A".into(),
            question: "Approve?".into(),
            required: vec!["plan.md".into()],
            optional: Vec::new(),
            inputs: vec!["spec.md".into()],
            summary_artifact: "plan.md".into(),
            agents: ["a", "b", "c", "d"]
                .iter()
                .map(|id| agent(id, 30))
                .collect(),
            reviewer: agent("reviewer", 15),
            synthesizer: agent("synthesizer", 20),
            qa: agent("qa", 10),
            concurrency,
            min_success_ratio: 0.75,
            stage_timeout: Duration::from_secs(120),
            synthesis_iterations: 1,
            output_cap_bytes: 1 << 20,
            kill_grace: Duration::from_secs(2),
            adaptation: Adaptation::default(),
        }
    }
}
