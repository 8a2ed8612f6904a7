//! What travels between a stage's coordinator and the worker that runs one of its agent
//! attempts, as JSON: the attempt's request (who is asked, the prompt and what it was rendered
//! from, its limits, and the settings its backend is built from) and its outcome.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use stagegate_engine::backend::{
    AgentOutcome, AnswerNotes, CallIdentity, CallMaterials, Failure, NotedOutcome, Reasoning,
    Truncation, Usage,
};
use stagegate_engine::event::AgentFailure;
use stagegate_engine::line_comment::LineComment;

use super::wire::{named, output_triples, output_views, text_pairs};

/// Where an attempt's backend comes from: the run's settings, as the stage's request carried
/// them. The same for every attempt of a stage (a worker builds its backends once per origin).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AttemptOrigin {
    pub config: Option<String>,
    pub environment: BTreeMap<String, String>,
    pub feature_key: String,
}

/// One attempt, as the coordinator sends it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AttemptRequest {
    pub origin: AttemptOrigin,
    /// The backend the engine chose for this attempt (the agent's, or its fallback).
    pub backend: String,
    pub identity: CallIdentity,
    pub prompt: String,
    /// What is left of the attempt's time when it is sent (its deadline is a local instant).
    pub timeout_ms: u64,
    pub memory_limit_bytes: u64,
    pub output_cap_bytes: u64,
    pub kill_grace_ms: u64,
    pub materials: MaterialsWire,
}

/// [`CallMaterials`] as JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MaterialsWire {
    pub stage_name: String,
    pub role: String,
    pub task: String,
    pub required: Vec<String>,
    pub inputs: Vec<(String, String)>,
    pub outputs: Vec<(String, String, String)>,
    pub failures: Vec<AgentFailure>,
    pub review: Option<String>,
    pub artifact: Option<String>,
    pub artifacts: Vec<(String, String)>,
    pub feedback: Option<String>,
    pub comments: Vec<LineComment>,
    pub previous: Option<String>,
    pub guidance: Vec<String>,
    pub discovery: Option<String>,
}

impl MaterialsWire {
    pub fn from_materials(materials: &CallMaterials) -> Self {
        MaterialsWire {
            stage_name: materials.stage_name.clone(),
            role: materials.role.clone(),
            task: materials.task.clone(),
            required: materials.required.clone(),
            inputs: text_pairs(&materials.inputs),
            outputs: output_triples(&materials.outputs),
            failures: materials.failures.clone(),
            review: materials.review.clone(),
            artifact: materials.artifact.clone(),
            artifacts: text_pairs(&materials.artifacts),
            feedback: materials.feedback.clone(),
            comments: materials.comments.clone(),
            previous: materials.previous.clone(),
            guidance: materials.guidance.clone(),
            discovery: materials.discovery.clone(),
        }
    }

    pub fn into_materials(self) -> CallMaterials {
        CallMaterials {
            stage_name: self.stage_name,
            role: self.role,
            task: self.task,
            required: self.required,
            inputs: Arc::new(named(self.inputs)),
            outputs: output_views(self.outputs).into(),
            failures: self.failures,
            review: self.review,
            artifact: self.artifact,
            artifacts: named(self.artifacts),
            feedback: self.feedback,
            comments: self.comments,
            previous: self.previous,
            guidance: self.guidance,
            discovery: self.discovery,
        }
    }
}

/// An attempt's outcome and the backend's notes, as JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AttemptOutcomeWire {
    pub result: Result<String, Failure>,
    pub stderr: Vec<u8>,
    pub usage: Option<Usage>,
    pub truncation: Option<Truncation>,
    pub reasoning: Option<Reasoning>,
}

impl AttemptOutcomeWire {
    pub fn from_noted(noted: NotedOutcome) -> Self {
        AttemptOutcomeWire {
            result: noted.outcome.result,
            stderr: noted.outcome.stderr,
            usage: noted.outcome.usage,
            truncation: noted.notes.truncation,
            reasoning: noted.notes.reasoning,
        }
    }

    /// An attempt that could not even start on the worker.
    pub fn failed(failure: Failure) -> Self {
        Self::from_noted(NotedOutcome {
            outcome: AgentOutcome::failure(failure),
            notes: AnswerNotes::default(),
        })
    }

    pub fn into_noted(self) -> NotedOutcome {
        NotedOutcome {
            outcome: AgentOutcome {
                result: self.result,
                stderr: self.stderr,
                usage: self.usage,
            },
            notes: AnswerNotes {
                truncation: self.truncation,
                reasoning: self.reasoning,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_outcome_keeps_its_kind_across_the_wire() {
        let wire = AttemptOutcomeWire::failed(Failure::RateLimited {
            message: "slow down".into(),
            retry_after_ms: Some(1500),
        });
        let json = serde_json::to_string(&wire).expect("encodes");
        let back: AttemptOutcomeWire = serde_json::from_str(&json).expect("decodes");
        assert_eq!(
            back.into_noted().outcome.result,
            Err(Failure::RateLimited {
                message: "slow down".into(),
                retry_after_ms: Some(1500),
            })
        );
    }
}
