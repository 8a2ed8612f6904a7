//! The seed's adaptive rules: a stage's settings adjusted to its inputs and the machine before
//! it starts, and to its own failures while it runs. Every adjustment is an event with its
//! reason ("concurrency 3 → 2: complexity 86 > 80"), shown in progress, status and the summary.
//!
//! Before the stage (pure: settings and scores in, adjusted plan and reasons out):
//! * complexity above the threshold → concurrency at most 2, timeouts +50 %, an exhaustive
//!   review, at least 2 synthesis iterations, a detailed QA;
//! * uncertainty above the threshold → a discovery step before the parallel agents (its list of
//!   unknowns and assumptions goes to every agent), explicit assumptions and examples required
//!   in the artifacts, and QA checks them;
//! * resources short (less memory than concurrency × agent memory, or one CPU, counting only
//!   agents that run programs) → concurrency 1, optional artifacts skipped.
//!
//! While the agents run (see `stage.rs`): a failure rate above `failure_rate` lowers the
//! concurrency by one; a timeout rate above `timeout_rate` raises the remaining timeouts by 50 %.

use std::time::Duration;

use serde::Serialize;
use stagegate_settings::AdaptiveRules;

use crate::stage_plan::{AgentPlan, StagePlan};

/// The scores of a stage's inputs, 0–100 (computed by the analysts from spec.md & co.).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct InputScores {
    pub complexity: u32,
    pub uncertainty: u32,
}

/// What the machine offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resources {
    pub available_memory_bytes: Option<u64>,
    pub cpus: usize,
}

impl Resources {
    /// This machine, now.
    pub fn detect() -> Self {
        Resources {
            available_memory_bytes: available_memory_bytes(),
            cpus: std::thread::available_parallelism().map_or(1, usize::from),
        }
    }
}

/// `MemAvailable` from `/proc/meminfo` (Linux); `None` elsewhere.
fn available_memory_bytes() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo
        .lines()
        .find(|line| line.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// One change to a stage's settings, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Adjustment {
    pub setting: String,
    pub from: String,
    pub to: String,
    pub reason: String,
}

impl std::fmt::Display for Adjustment {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            formatter,
            "{} {} → {}: {}",
            self.setting, self.from, self.to, self.reason
        )
    }
}

/// Extra instructions per phase, added to the prompts by the adaptive rules.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Guidance {
    pub agent: Vec<String>,
    pub review: Vec<String>,
    pub synthesis: Vec<String>,
    pub qa: Vec<String>,
}

/// What the adaptive rules did to a plan.
#[derive(Debug, Clone, Default)]
pub struct Adaptation {
    /// The changes made before the stage, for its events.
    pub adjustments: Vec<Adjustment>,
    pub guidance: Guidance,
    /// An agent that lists unknowns and assumptions before the others run.
    pub discovery: Option<AgentPlan>,
    /// Thresholds for the rules applied while the stage runs; `None` turns them off.
    pub live: Option<LiveRules>,
}

/// The rules applied while agents run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LiveRules {
    pub failure_rate: f64,
    pub timeout_rate: f64,
}

/// Applies the rules to `plan` (in place) and records what changed in `plan.adaptation`.
pub fn adapt(
    plan: &mut StagePlan,
    rules: &AdaptiveRules,
    scores: Option<InputScores>,
    resources: Resources,
) {
    if !rules.enabled {
        return;
    }
    let mut adjustments = Vec::new();
    if let Some(scores) = scores {
        if scores.complexity > rules.complexity_threshold {
            let reason = format!(
                "complexity {} > {}",
                scores.complexity, rules.complexity_threshold
            );
            high_complexity(plan, &reason, &mut adjustments);
        }
        if scores.uncertainty > rules.uncertainty_threshold {
            let reason = format!(
                "uncertainty {} > {}",
                scores.uncertainty, rules.uncertainty_threshold
            );
            high_uncertainty(plan, &reason, &mut adjustments);
        }
    }
    if let Some(reason) = resources_short(plan, resources) {
        short_of_resources(plan, &reason, &mut adjustments);
    }
    plan.adaptation.adjustments.extend(adjustments);
    plan.adaptation.live = Some(LiveRules {
        failure_rate: rules.failure_rate,
        timeout_rate: rules.timeout_rate,
    });
}

fn high_complexity(plan: &mut StagePlan, reason: &str, adjustments: &mut Vec<Adjustment>) {
    if plan.concurrency > 2 {
        adjustments.push(change("concurrency", plan.concurrency, 2, reason));
        plan.concurrency = 2;
    }
    let longer = |duration: Duration| duration.mul_f64(1.5);
    let before = plan
        .agents
        .first()
        .map(|agent| agent.timeout)
        .unwrap_or(plan.reviewer.timeout);
    for agent in
        plan.agents
            .iter_mut()
            .chain([&mut plan.reviewer, &mut plan.synthesizer, &mut plan.qa])
    {
        agent.timeout = longer(agent.timeout);
    }
    plan.stage_timeout = longer(plan.stage_timeout);
    adjustments.push(Adjustment {
        setting: "timeouts".into(),
        from: humanize(before),
        to: humanize(longer(before)),
        reason: format!("{reason} (+50 % for every agent and the stage)"),
    });
    if plan.synthesis_iterations < 2 {
        adjustments.push(change(
            "synthesis_iterations",
            plan.synthesis_iterations,
            2,
            reason,
        ));
        plan.synthesis_iterations = 2;
    }
    let guidance = &mut plan.adaptation.guidance;
    guidance.review.push(
        "This feature is complex: review exhaustively — every requirement, every agent's point, every conflict."
            .into(),
    );
    guidance.qa.push(
        "This feature is complex: check in detail — trace every requirement id into the artifacts and list each one missing."
            .into(),
    );
    adjustments.push(Adjustment {
        setting: "review and QA".into(),
        from: "standard".into(),
        to: "exhaustive review, detailed QA".into(),
        reason: reason.to_owned(),
    });
}

fn high_uncertainty(plan: &mut StagePlan, reason: &str, adjustments: &mut Vec<Adjustment>) {
    let mut discovery = plan.reviewer.clone();
    discovery.id = "discovery-analyst".into();
    discovery.role = "Discovery Analyst".into();
    discovery.task = "List the unknowns, open questions ([NEEDS CLARIFICATION] markers, vague terms, missing success criteria) and the assumptions the other agents should work from, each with the requirement it affects.".into();
    discovery.required = false;
    plan.adaptation.discovery = Some(discovery);
    let guidance = &mut plan.adaptation.guidance;
    guidance.agent.push(
        "The inputs are uncertain: state every assumption you make explicitly, and give a concrete example for each requirement you discuss."
            .into(),
    );
    guidance.synthesis.push(
        "The inputs are uncertain: include an `Assumptions` section listing every assumption explicitly, and a concrete example for each requirement."
            .into(),
    );
    guidance.qa.push(
        "The inputs are uncertain: check that the artifacts list their assumptions explicitly and give examples; ask for rework if they do not."
            .into(),
    );
    adjustments.push(Adjustment {
        setting: "discovery step".into(),
        from: "none".into(),
        to: "discovery-analyst before the agents; explicit assumptions and examples".into(),
        reason: reason.to_owned(),
    });
}

/// Why the machine cannot give this stage what it asks for, if it cannot. Only agents that run
/// programs (CLI coding agents) take memory and CPU of their own: in-process and HTTP agents
/// (builtin, mock, openai, anthropic) cost this machine next to nothing per attempt, so a wide
/// stage of them is never made sequential.
fn resources_short(plan: &StagePlan, resources: Resources) -> Option<String> {
    let per_agent = plan
        .agents
        .iter()
        .flat_map(|agent| {
            let limit = agent.memory_limit_bytes;
            std::iter::once(agent.backend.backend.memory_per_attempt(limit)).chain(
                agent
                    .fallback
                    .as_ref()
                    .map(|fallback| fallback.backend.memory_per_attempt(limit)),
            )
        })
        .max()
        .unwrap_or(0);
    if per_agent == 0 || plan.concurrency <= 1 {
        return None;
    }
    if resources.cpus <= 1 {
        return Some("one CPU".to_owned());
    }
    let available = resources.available_memory_bytes?;
    let wanted = per_agent.saturating_mul(plan.concurrency as u64);
    (available < wanted).then(|| {
        format!(
            "{} MB available < {} agents × {} MB",
            available / 1_000_000,
            plan.concurrency,
            per_agent / 1_000_000
        )
    })
}

fn short_of_resources(plan: &mut StagePlan, reason: &str, adjustments: &mut Vec<Adjustment>) {
    if plan.concurrency > 1 {
        adjustments.push(change("concurrency", plan.concurrency, 1, reason));
        plan.concurrency = 1;
    }
    if !plan.optional.is_empty() {
        adjustments.push(Adjustment {
            setting: "optional artifacts".into(),
            from: plan.optional.join(", "),
            to: "skipped".into(),
            reason: reason.to_owned(),
        });
        plan.optional.clear();
    }
}

fn change(setting: &str, from: impl ToString, to: impl ToString, reason: &str) -> Adjustment {
    Adjustment {
        setting: setting.to_owned(),
        from: from.to_string(),
        to: to.to_string(),
        reason: reason.to_owned(),
    }
}

pub(crate) fn humanize(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis.is_multiple_of(1000) {
        format!("{}s", millis / 1000)
    } else {
        format!("{millis}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> AdaptiveRules {
        AdaptiveRules {
            enabled: true,
            complexity_threshold: 80,
            uncertainty_threshold: 70,
            failure_rate: 0.3,
            timeout_rate: 0.2,
        }
    }

    fn plenty() -> Resources {
        Resources {
            available_memory_bytes: Some(64_000_000_000),
            cpus: 8,
        }
    }

    #[test]
    fn high_complexity_lowers_concurrency_and_lengthens_timeouts() {
        let mut plan = crate::stage_plan::tests::plan_with_mock(3);
        adapt(
            &mut plan,
            &rules(),
            Some(InputScores {
                complexity: 86,
                uncertainty: 10,
            }),
            plenty(),
        );
        assert_eq!(plan.concurrency, 2);
        assert_eq!(plan.agents[0].timeout, Duration::from_secs(45));
        assert_eq!(plan.synthesis_iterations, 2);
        let first = &plan.adaptation.adjustments[0];
        assert_eq!(first.to_string(), "concurrency 3 → 2: complexity 86 > 80");
        assert!(!plan.adaptation.guidance.review.is_empty());
        assert!(plan.adaptation.discovery.is_none());
    }

    #[test]
    fn high_uncertainty_adds_a_discovery_step() {
        let mut plan = crate::stage_plan::tests::plan_with_mock(3);
        adapt(
            &mut plan,
            &rules(),
            Some(InputScores {
                complexity: 10,
                uncertainty: 71,
            }),
            plenty(),
        );
        assert_eq!(plan.concurrency, 3);
        let discovery = plan.adaptation.discovery.as_ref().expect("discovery");
        assert_eq!(discovery.id, "discovery-analyst");
        assert!(!plan.adaptation.guidance.synthesis.is_empty());
    }

    /// A plan whose agents run a program (a CLI coding agent) under the agents' 256 MB cap.
    fn plan_with_programs(concurrency: usize) -> StagePlan {
        let mut plan = crate::stage_plan::tests::plan_with_mock(concurrency);
        let program = crate::stage_plan::BackendHandle {
            name: "cli".into(),
            backend: std::sync::Arc::new(
                crate::command_agent::CommandAgent::new(vec!["true".into()], Default::default())
                    .expect("a command"),
            ),
        };
        for agent in &mut plan.agents {
            agent.backend = program.clone();
        }
        plan
    }

    fn short(available_memory_bytes: u64, cpus: usize) -> Resources {
        Resources {
            available_memory_bytes: Some(available_memory_bytes),
            cpus,
        }
    }

    #[test]
    fn in_process_agents_are_never_made_sequential_by_short_resources() {
        // 100 mock agents at a limit of 100 on a machine with 300 MB free and one CPU: they run
        // in this process and take nothing of their own, so nothing is lowered.
        let mut plan = crate::stage_plan::tests::plan_with_mock(100);
        adapt(&mut plan, &rules(), None, short(300_000_000, 1));
        assert_eq!(plan.concurrency, 100);
        assert!(plan.adaptation.adjustments.is_empty());
    }

    #[test]
    fn program_agents_on_one_cpu_run_sequentially() {
        let mut plan = plan_with_programs(3);
        adapt(&mut plan, &rules(), None, short(64_000_000_000, 1));
        assert_eq!(plan.concurrency, 1);
        assert_eq!(plan.adaptation.adjustments[0].reason, "one CPU");
    }

    #[test]
    fn short_memory_runs_sequentially_without_optional_artifacts() {
        let mut plan = plan_with_programs(3);
        plan.optional = vec!["research.md".into()];
        adapt(
            &mut plan,
            &rules(),
            None,
            Resources {
                available_memory_bytes: Some(300_000_000),
                cpus: 4,
            },
        );
        assert_eq!(plan.concurrency, 1);
        assert!(plan.optional.is_empty());
        assert!(
            plan.adaptation.adjustments[0]
                .reason
                .contains("MB available")
        );
    }

    #[test]
    fn scores_at_the_threshold_change_nothing_and_disabled_rules_never_do() {
        let mut plan = crate::stage_plan::tests::plan_with_mock(3);
        let at = Some(InputScores {
            complexity: 80,
            uncertainty: 70,
        });
        adapt(&mut plan, &rules(), at, plenty());
        assert!(plan.adaptation.adjustments.is_empty());
        let mut disabled = rules();
        disabled.enabled = false;
        let mut plan = crate::stage_plan::tests::plan_with_mock(3);
        adapt(
            &mut plan,
            &disabled,
            Some(InputScores {
                complexity: 100,
                uncertainty: 100,
            }),
            plenty(),
        );
        assert!(plan.adaptation.adjustments.is_empty());
        assert!(plan.adaptation.live.is_none());
    }
}
