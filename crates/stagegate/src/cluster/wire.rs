//! What travels between the user's machine and a worker, as JSON: the stage's request (its
//! inputs and the settings they are read under, so a worker needs no checkout), the stage's
//! events with the texts the event log leaves out (prompts, outputs, artifacts), and its
//! product. Secrets do not travel: a worker's backends read their keys from its own
//! environment, and only `STAGEGATE_*` variables are sent.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use stagegate_engine::backend::Phase;
use stagegate_engine::event::{AgentFailure, Event, Verdict};
use stagegate_engine::prompt::{AgentOutputView, NamedText};
use stagegate_engine::stage::StageProduct;

/// A stage to run, as the user's machine sends it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StageRequest {
    pub run_id: String,
    pub stage: String,
    /// The feature directory relative to the repository (`specs/001-x`).
    pub feature_key: String,
    /// `stagegate.toml` (or `--config`)'s text, if there is one.
    pub config: Option<String>,
    /// The `STAGEGATE_*` variables the user's settings were loaded with.
    pub environment: BTreeMap<String, String>,
    pub concurrency: Option<usize>,
    /// The repository's prompt templates (`.specify/stagegate/templates/NAME`), by file name.
    pub templates: Vec<(String, String)>,
    /// The stage's inputs with the project's context, checked on the user's machine.
    pub inputs: Vec<(String, String)>,
    /// `[cluster] repository`: `command` agents' attempts go to the workers that serve it.
    #[serde(default)]
    pub repository: Option<String>,
}

/// An event with the texts its JSON form leaves out.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireEvent {
    pub event: Event,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr: Option<Vec<u8>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// The worker that ran an attempt (on `AttemptFinished` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
}

impl WireEvent {
    pub fn from_event(event: &Event) -> Self {
        let mut wire = WireEvent {
            event: event.clone(),
            prompt: None,
            output: None,
            stderr: None,
            content: None,
            worker: None,
        };
        match event {
            Event::AttemptStarted { prompt, .. } => wire.prompt = Some(prompt.to_string()),
            Event::AttemptFinished { output, stderr, .. } => {
                wire.output = Some(output.to_string());
                wire.stderr = Some(stderr.to_vec());
            }
            Event::CacheHit { prompt, output, .. } => {
                wire.prompt = Some(prompt.to_string());
                wire.output = Some(output.to_string());
            }
            Event::ArtifactSynthesized { content, .. } => wire.content = Some(content.to_string()),
            _ => {}
        }
        wire
    }

    /// The event with its texts put back.
    pub fn into_event(self) -> Event {
        let text = |value: Option<String>| Arc::<str>::from(value.unwrap_or_default());
        let mut event = self.event;
        match &mut event {
            Event::AttemptStarted { prompt, .. } => *prompt = text(self.prompt),
            Event::AttemptFinished { output, stderr, .. } => {
                *output = text(self.output);
                *stderr = Arc::from(self.stderr.unwrap_or_default());
            }
            Event::CacheHit { prompt, output, .. } => {
                *prompt = text(self.prompt);
                *output = text(self.output);
            }
            Event::ArtifactSynthesized { content, .. } => *content = text(self.content),
            _ => {}
        }
        event
    }
}

/// What a worker sends back: the stage's events, and its product or why it failed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StageReport {
    pub events: Vec<WireEvent>,
    pub outcome: StageOutcomeWire,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum StageOutcomeWire {
    Product(ProductWire),
    QuorumNotMet {
        reason: String,
        failures: Vec<AgentFailure>,
    },
    Failed {
        message: String,
    },
}

/// [`StageProduct`] as JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProductWire {
    pub outputs: Vec<(String, String, String)>,
    pub failures: Vec<AgentFailure>,
    pub review: String,
    pub artifacts: Vec<(String, String)>,
    pub verdict: Verdict,
    pub qa_feedback: String,
    pub iterations: u32,
    pub next_attempts: Vec<(Phase, String, Option<String>, u32)>,
}

impl ProductWire {
    pub fn from_product(product: &StageProduct) -> Self {
        ProductWire {
            outputs: output_triples(&product.outputs),
            failures: product.failures.clone(),
            review: product.review.clone(),
            artifacts: text_pairs(&product.artifacts),
            verdict: product.verdict,
            qa_feedback: product.qa_feedback.clone(),
            iterations: product.iterations,
            next_attempts: product
                .next_attempts
                .iter()
                .map(|((phase, agent, artifact), next)| {
                    (*phase, agent.clone(), artifact.clone(), *next)
                })
                .collect(),
        }
    }

    pub fn into_product(self) -> StageProduct {
        StageProduct {
            outputs: output_views(self.outputs),
            failures: self.failures,
            review: self.review,
            artifacts: named(self.artifacts),
            verdict: self.verdict,
            qa_feedback: self.qa_feedback,
            iterations: self.iterations,
            next_attempts: self
                .next_attempts
                .into_iter()
                .map(|(phase, agent, artifact, next)| ((phase, agent, artifact), next))
                .collect(),
        }
    }
}

/// Agents' outputs as (agent, role, output), and back.
pub fn output_triples(views: &[AgentOutputView]) -> Vec<(String, String, String)> {
    views
        .iter()
        .map(|view| (view.agent.clone(), view.role.clone(), view.output.clone()))
        .collect()
}

pub fn output_views(triples: Vec<(String, String, String)>) -> Vec<AgentOutputView> {
    triples
        .into_iter()
        .map(|(agent, role, output)| AgentOutputView {
            agent,
            role,
            output,
        })
        .collect()
}

/// Named texts as (name, content), and back ([`named`]).
pub fn text_pairs(texts: &[NamedText]) -> Vec<(String, String)> {
    texts
        .iter()
        .map(|text| (text.name.clone(), text.content.clone()))
        .collect()
}

pub fn named(pairs: Vec<(String, String)>) -> Vec<NamedText> {
    pairs
        .into_iter()
        .map(|(name, content)| NamedText { name, content })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use stagegate_engine::backend::CallIdentity;

    #[test]
    fn the_texts_the_event_log_leaves_out_travel_with_the_event() {
        let event = Event::AttemptStarted {
            identity: CallIdentity {
                run_id: "r".into(),
                stage: "plan".into(),
                phase: Phase::Agent,
                agent: "architect".into(),
                attempt: 1,
                artifact: None,
            },
            backend: "builtin".into(),
            at_ms: 1,
            prompt: Arc::from("the prompt"),
            prompt_joints: Arc::default(),
        };
        let json = serde_json::to_string(&WireEvent::from_event(&event)).expect("encodes");
        let back: WireEvent = serde_json::from_str(&json).expect("decodes");
        assert_eq!(back.into_event(), event);
    }
}
