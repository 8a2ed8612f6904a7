//! The analysts: one per role of the default pipeline, dispatched on the agent's id, with
//! generic fallbacks by phase for agents of a user's own stages.
//!
//! Every analyst is a pure function of the call's materials: the same request gives the same
//! bytes, so the engine's cache and the tests can rely on it.

mod architecture;
mod confidence;
mod constitution_check;
mod constitution_rules;
mod core_implementation;
mod discovery;
mod docs;
mod estimation;
mod findings;
mod generic;
mod integrations;
mod qa;
mod quality_reviewers;
mod report;
mod requirements;
mod reviewer;
mod risk;
mod synthesis;
mod task_breakdown;
mod technical_context;
mod test_plan;
mod traceability;

use stagegate_engine::backend::{AgentRequest, Phase};

use crate::speckit::Feature;

/// What every analyst is given: the parsed feature and the call's materials.
pub(crate) struct Call<'a> {
    pub(crate) request: &'a AgentRequest,
    pub(crate) feature: Feature,
}

impl Call<'_> {
    pub(crate) fn materials(&self) -> &stagegate_engine::backend::CallMaterials {
        &self.request.materials
    }

    pub(crate) fn agent(&self) -> &str {
        &self.request.identity.agent
    }

    /// The role's display name, else the agent id.
    pub(crate) fn role(&self) -> &str {
        let role = self.materials().role.as_str();
        if role.is_empty() { self.agent() } else { role }
    }

    /// What the adaptive rules' guidance for this phase asks for.
    pub(crate) fn asks(&self) -> Asks {
        Asks::from_guidance(&self.materials().guidance)
    }
}

/// What a phase's guidance lines ask of the built-in analysts, read from their words (the
/// engine's adaptive rules write them; a user's own configuration may too).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Asks {
    /// Explicit assumptions ("state every assumption", "an `Assumptions` section").
    pub(crate) assumptions: bool,
    /// A concrete example per requirement.
    pub(crate) examples: bool,
    /// An exhaustive review: every requirement accounted for.
    pub(crate) exhaustive: bool,
    /// A detailed QA: every requirement id traced into the artifacts.
    pub(crate) detailed: bool,
}

impl Asks {
    pub(crate) fn from_guidance(guidance: &[String]) -> Asks {
        let lower = guidance.join("\n").to_lowercase();
        Asks {
            assumptions: lower.contains("assumption"),
            examples: lower.contains("example"),
            exhaustive: lower.contains("exhaustive"),
            detailed: lower.contains("in detail")
                || lower.contains("detailed")
                || lower.contains("trace every requirement"),
        }
    }
}

/// The answer to one call.
pub(crate) fn answer(request: &AgentRequest) -> String {
    let materials = &request.materials;
    let feature = Feature::from_files(&materials.inputs, &materials.artifacts);
    let call = Call { request, feature };
    match request.identity.phase {
        Phase::Agent => role_agent(&call),
        Phase::Review => reviewer::review(&call),
        Phase::Synthesis => synthesis::write(&call),
        Phase::Qa => qa::check(&call),
    }
}

/// A role agent's analysis, by id; unknown ids by the words of their role. With a discovery
/// step's answer, or guidance asking for assumptions or examples, every analysis (but the
/// discovery's own) states the assumptions it worked from and an example per requirement.
fn role_agent(call: &Call<'_>) -> String {
    if call.agent() == "discovery-analyst" {
        return discovery::analyze(call);
    }
    let analysis = analysis(call);
    let asks = call.asks();
    let mut extra = String::new();
    if call.materials().discovery.is_some() || asks.assumptions {
        extra.push_str(&assumptions_used(call));
    }
    if asks.examples {
        extra.push_str("## Examples\n\n");
        extra.push_str(&report::bullets(
            &discovery::examples(&call.feature.spec),
            "No functional requirements to give examples for.",
        ));
    }
    insert_before_closing(analysis, &extra)
}

/// `## Assumptions Used`: the discovery step's assumptions when it ran, else the feature's.
fn assumptions_used(call: &Call<'_>) -> String {
    let mut out = String::from("## Assumptions Used\n\n");
    let from_discovery = call
        .materials()
        .discovery
        .as_deref()
        .map(discovery::discovery_assumptions)
        .filter(|items| !items.is_empty());
    let items = match from_discovery {
        Some(items) => {
            out.push_str("_From the discovery step (`discovery-analyst`): this analysis works from them until the person answers its questions._\n\n");
            items
        }
        None => {
            out.push_str("_Stated by this analysis (no discovery step's answer was given): it works from them until the person answers the open questions._\n\n");
            discovery::assumption_items(&call.feature.spec)
        }
    };
    out.push_str(&report::bullets(
        &items,
        "- None: the spec states everything this analysis needed.",
    ));
    out
}

/// `extra` inserted before an analysis' closing part (reading notes, confidence basis and
/// `CONFIDENCE:` line), so that the confidence line stays last.
fn insert_before_closing(mut analysis: String, extra: &str) -> String {
    if extra.is_empty() {
        return analysis;
    }
    let at = ["\n## Reading Notes\n", "\n_Confidence basis:"]
        .iter()
        .filter_map(|marker| analysis.rfind(marker).map(|at| at + 1))
        .min()
        .unwrap_or(analysis.len());
    analysis.insert_str(at, extra);
    analysis
}

fn analysis(call: &Call<'_>) -> String {
    match call.agent() {
        "requirements-analyst" => requirements::analyze(call),
        "solution-architect" => architecture::analyze(call),
        "risk-compliance-analyst" => risk::analyze(call),
        "estimation-scope-analyst" => estimation::analyze(call),
        "core-implementer" => core_implementation::analyze(call),
        "integrations-engineer" => integrations::analyze(call),
        "test-engineer" => test_plan::analyze(call),
        "docs-engineer" => docs::analyze(call),
        "completeness-reviewer" => quality_reviewers::completeness(call),
        "feasibility-reviewer" => quality_reviewers::feasibility(call),
        "security-reviewer" => quality_reviewers::security(call),
        "consistency-reviewer" => quality_reviewers::consistency(call),
        _ => generic::analyze(call),
    }
}
