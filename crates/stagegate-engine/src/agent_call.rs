//! One agent call as a small state machine: attempt → (retry after backoff)* → fallback.
//!
//! A call runs in its own task and reports every step as an event over a channel; the stage
//! loop's dispatcher linearizes those events into the sink before acting on the call's result.

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::backend::{
    AgentRequest, AnswerNotes, CallIdentity, CallMaterials, Failure, NotedOutcome, Phase, Usage,
};
use crate::event::{AttemptStatus, Event, now_ms, parse_confidence};
use crate::secrets;
use crate::stage_plan::{AgentPlan, BackendHandle};

/// What every call in a stage shares.
#[derive(Debug)]
pub(crate) struct CallEnvironment {
    pub run_id: String,
    pub stage: String,
    pub repo_root: PathBuf,
    pub feature_dir: PathBuf,
    /// Fires on Ctrl-C or at the stage deadline.
    pub cancel: CancellationToken,
    pub stage_deadline: Instant,
    pub output_cap_bytes: u64,
    pub kill_grace: Duration,
}

/// One call to make.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub agent: AgentPlan,
    pub phase: Phase,
    pub artifact: Option<String>,
    pub prompt: Arc<str>,
    /// Where the agent's own values start and end in `prompt`
    /// ([`crate::prompt::RenderedPrompt::joints`]).
    pub prompt_joints: Arc<[usize]>,
    /// The prompt (with `cuts`, `cache_key` and `cached`) is still to be rendered: a role
    /// agent's call is rendered when it is about to start (`StageLoop::prepare`), so a stage
    /// of thousands of agents holds the prompts of the calls in flight, not one per agent.
    pub unrendered: bool,
    /// What the prompt left out to fit the backend's context (`tasks.md was cut from …`).
    pub cuts: Vec<String>,
    pub materials: Arc<CallMaterials>,
    /// What the call's output is cached under (see `cache_key`).
    pub cache_key: String,
    /// An earlier identical call's output: the call is answered from it, not run.
    pub cached: Option<Arc<str>>,
    /// The attempt number of the first try (later calls for the same work continue counting).
    pub first_attempt: u32,
    /// At most this many tries on the primary backend; `None` = the retry policy's.
    pub max_tries: Option<u32>,
    pub use_fallback: bool,
}

/// How a call ended.
#[derive(Debug, Clone)]
pub(crate) struct CallResult {
    pub agent: String,
    /// The artifact a synthesis call wrote, so that concurrent syntheses can be told apart.
    pub artifact: Option<String>,
    pub result: Result<String, Failure>,
    /// The number of the last attempt made.
    pub last_attempt: u32,
}

/// Answers `call` from its cached output: one event, no backend call.
pub(crate) fn answer_from_cache(
    environment: &CallEnvironment,
    call: &Call,
    output: Arc<str>,
) -> (CallResult, Event) {
    // An answer stored before its secret was known (or by an older stagegate) is redacted now.
    let redacted = match secrets::redact(&output) {
        Cow::Owned(redacted) => Some(redacted),
        Cow::Borrowed(_) => None,
    };
    let output = redacted.map_or(output, Arc::from);
    let event = Event::CacheHit {
        identity: identity(environment, call, call.first_attempt),
        backend: call.agent.backend.name.clone(),
        cache_key: call.cache_key.clone(),
        output_bytes: output.len(),
        output_hash: blake3::hash(output.as_bytes()).to_hex().to_string(),
        confidence: parse_confidence(&output),
        at_ms: now_ms(),
        prompt: call.prompt.clone(),
        prompt_joints: call.prompt_joints.clone(),
        output: output.clone(),
    };
    let result = CallResult {
        agent: call.agent.id.clone(),
        artifact: call.artifact.clone(),
        result: Ok(output.to_string()),
        last_attempt: call.first_attempt,
    };
    (result, event)
}

/// The key an agent call's output is cached under: a blake3 hash of everything that changes
/// the output — the schema of this key, the backend's identity and settings, who is asked
/// (phase, agent, artifact) and the rendered prompt, which holds the input files' content and
/// the earlier phases' outputs (so a changed spec.md or plan.md changes every key).
pub fn cache_key(
    backend_fingerprint: &str,
    phase: Phase,
    agent: &str,
    artifact: Option<&str>,
    prompt_digest: &[u8; 32],
) -> String {
    // v2: the prompt goes in by its digest (v1 hashed its text after the other parts).
    const SCHEMA: &str = "stagegate-cache-v2";
    let mut hasher = blake3::Hasher::new();
    for part in [
        SCHEMA,
        backend_fingerprint,
        phase.as_str(),
        agent,
        artifact.unwrap_or(""),
    ] {
        hasher.update(&(part.len() as u64).to_le_bytes());
        hasher.update(part.as_bytes());
    }
    hasher.update(prompt_digest);
    hasher.finalize().to_hex().to_string()
}

/// What stands for a rendered prompt in its cache key: its blake3 hash. Hashed alone, a
/// prompt's 1 KiB chunks are hashed side by side (SIMD); after the key's other parts they were
/// hashed one after another. A prompt filled in from a layout has a digest of its own
/// ([`crate::prompt::RenderedPrompt::digest`]), which costs no pass over its text.
pub fn prompt_digest(prompt: &str) -> [u8; 32] {
    *blake3::hash(prompt.as_bytes()).as_bytes()
}

/// Runs `call` to its end, sending its events to `events`.
pub(crate) async fn run_call(
    environment: Arc<CallEnvironment>,
    call: Call,
    events: UnboundedSender<Event>,
) -> CallResult {
    let max_tries = call
        .max_tries
        .unwrap_or_else(|| call.agent.retry.max_attempts())
        .max(1);
    let mut attempt = call.first_attempt;
    let mut tries = 1;
    let mut outcome =
        attempt_once(&environment, &call, &call.agent.backend, attempt, &events).await;
    while let Err(failure) = &outcome.0 {
        if tries >= max_tries || !failure.is_retryable() || environment.cancel.is_cancelled() {
            break;
        }
        let delay = call.agent.retry.delay(tries, failure, fastrand::f64());
        let identity = identity(&environment, &call, attempt);
        send(
            &events,
            Event::RetryScheduled {
                identity,
                delay_ms: millis(delay),
                at_ms: now_ms(),
            },
        );
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = environment.cancel.cancelled() => {
                outcome = (Err(Failure::Cancelled), None);
                break;
            }
        }
        tries += 1;
        attempt += 1;
        outcome = attempt_once(&environment, &call, &call.agent.backend, attempt, &events).await;
    }
    let fallback_applies = matches!(&outcome.0, Err(failure) if *failure != Failure::Cancelled);
    if let (true, true, Some(fallback)) =
        (call.use_fallback, fallback_applies, &call.agent.fallback)
    {
        attempt += 1;
        send(
            &events,
            Event::FallbackStarted {
                run_id: environment.run_id.clone(),
                stage: environment.stage.clone(),
                agent: call.agent.id.clone(),
                from: call.agent.backend.name.clone(),
                to: fallback.name.clone(),
                at_ms: now_ms(),
            },
        );
        outcome = attempt_once(&environment, &call, fallback, attempt, &events).await;
    }
    CallResult {
        agent: call.agent.id.clone(),
        artifact: call.artifact.clone(),
        result: outcome.0,
        last_attempt: attempt,
    }
}

async fn attempt_once(
    environment: &CallEnvironment,
    call: &Call,
    backend: &BackendHandle,
    attempt: u32,
    events: &UnboundedSender<Event>,
) -> (Result<String, Failure>, Option<Usage>) {
    let identity = identity(environment, call, attempt);
    send(
        events,
        Event::AttemptStarted {
            identity: identity.clone(),
            backend: backend.name.clone(),
            at_ms: now_ms(),
            prompt: call.prompt.clone(),
            prompt_joints: call.prompt_joints.clone(),
        },
    );
    let started = Instant::now();
    let deadline = (started + call.agent.timeout).min(environment.stage_deadline);
    let request = AgentRequest {
        identity: identity.clone(),
        prompt: call.prompt.clone(),
        repo_root: environment.repo_root.clone(),
        feature_dir: environment.feature_dir.clone(),
        deadline,
        cancel: environment.cancel.clone(),
        memory_limit_bytes: call.agent.memory_limit_bytes,
        output_cap_bytes: environment.output_cap_bytes,
        kill_grace: environment.kill_grace,
        materials: call.materials.clone(),
    };
    let NotedOutcome { mut outcome, notes } = backend.backend.run_noted(request).await;
    // Before anything sees it: events, the recorder, the cache, the retry policy's messages.
    secrets::redact_outcome(&mut outcome);
    let duration = started.elapsed();
    send_notes(events, &identity, &backend.name, notes);
    let (output, output_hash, confidence): (Arc<str>, _, _) = match &outcome.result {
        Ok(text) => (
            Arc::from(text.as_str()),
            Some(blake3::hash(text.as_bytes()).to_hex().to_string()),
            parse_confidence(text),
        ),
        Err(_) => (Arc::from(""), None, None),
    };
    send(
        events,
        Event::AttemptFinished {
            identity,
            backend: backend.name.clone(),
            status: AttemptStatus::of(&outcome.result),
            failure: outcome.result.as_ref().err().cloned(),
            duration_ms: millis(duration),
            output_bytes: output.len(),
            output_hash,
            confidence,
            usage: outcome.usage,
            cache_key: Some(call.cache_key.clone()),
            at_ms: now_ms(),
            output,
            stderr: Arc::from(outcome.stderr.as_slice()),
        },
    );
    (outcome.result, outcome.usage)
}

/// What the backend noticed about the answer, as events ahead of the attempt's end.
fn send_notes(
    events: &UnboundedSender<Event>,
    identity: &CallIdentity,
    backend: &str,
    notes: AnswerNotes,
) {
    if let Some(truncation) = notes.truncation {
        send(
            events,
            Event::AnswerTruncated {
                identity: identity.clone(),
                backend: backend.to_owned(),
                cuts: truncation.cuts,
                handling: truncation.handling,
                at_ms: now_ms(),
            },
        );
    }
    if let Some(reasoning) = notes.reasoning {
        send(
            events,
            Event::ReasoningStripped {
                identity: identity.clone(),
                backend: backend.to_owned(),
                reasoning,
                at_ms: now_ms(),
            },
        );
    }
}

fn identity(environment: &CallEnvironment, call: &Call, attempt: u32) -> CallIdentity {
    CallIdentity {
        run_id: environment.run_id.clone(),
        stage: environment.stage.clone(),
        phase: call.phase,
        agent: call.agent.id.clone(),
        attempt,
        artifact: call.artifact.clone(),
    }
}

/// The dispatcher outlives every call, so a closed channel only happens while the stage is
/// being torn down; the event has nowhere to go then.
fn send(events: &UnboundedSender<Event>, event: Event) {
    let _ = events.send(event);
}

pub(crate) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
