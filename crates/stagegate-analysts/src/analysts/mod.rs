//! The analysts: one per role of the default pipeline, dispatched on the agent's id, with
//! generic fallbacks by phase for agents of a user's own stages.
//!
//! Every analyst is a pure function of the call's materials: the same request gives the same
//! bytes, so the engine's cache and the tests can rely on it.

mod architecture;
mod confidence;
mod core_implementation;
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

/// A role agent's analysis, by id; unknown ids by the words of their role.
fn role_agent(call: &Call<'_>) -> String {
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
