//! The coordinator's backends on the cluster: the stage's engine runs on one worker, unchanged
//! (its quorum, sequential pass, fallback, retry policy and adaptive rules are the ones a run
//! in process has), but every backend of its plan is wrapped so that an attempt is not run
//! here: it is sent to the cluster as its own workflow, and any worker of the task queue runs
//! it. The wrapper keeps the local backend's kind and fingerprint, so events and cache keys are
//! those of a run in process.
//!
//! An attempt's workflow id is the attempt's identity (run, stage, phase, agent, artifact,
//! attempt number). A coordinator that takes a lost one's stage over runs the same engine on
//! the same inputs and so asks for the same attempts: it is given those already finished, and
//! waits for those still running, instead of running them again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use stagegate_cluster::{AttemptDispatcher, AttemptTask, repository_queue};
use stagegate_engine::backend::{
    AgentOutcome, AgentRequest, Backend, BoxFuture, CallIdentity, Failure, NotedOutcome,
};
use stagegate_engine::stage::duration_ms;
use stagegate_engine::stage_plan::{BackendHandle, StagePlan};
use tokio::time::Instant;

use super::attempt_wire::{AttemptOrigin, AttemptOutcomeWire, AttemptRequest, MaterialsWire};
use super::payload::{pack, unpack};

/// Time beyond an attempt's own deadline (which its worker enforces) for the worker to report,
/// or for a lost worker's attempt to be noticed and run again elsewhere.
const REPORT_SLACK: Duration = Duration::from_secs(30);

/// Where a stage's attempts go, and what they are built from.
pub struct AttemptRoute {
    pub dispatcher: AttemptDispatcher,
    pub origin: AttemptOrigin,
    pub workers: AttemptWorkers,
    /// The repository whose checkout `command` agents need (`[cluster] repository`).
    pub repository: Option<String>,
}

impl AttemptRoute {
    /// The task queue for an attempt on a backend of `kind`: a CLI agent works in the
    /// repository, so it goes to the workers that serve it; the others (built-in analysts, HTTP
    /// models, mocks) read only their prompt and go to any worker.
    fn task_queue(&self, kind: &str) -> String {
        let queue = self.dispatcher.task_queue();
        match &self.repository {
            Some(repository) if kind == "command" => repository_queue(queue, repository),
            _ => queue.to_owned(),
        }
    }
}

/// Which worker ran each attempt of the stage, by attempt key.
#[derive(Clone, Default)]
pub struct AttemptWorkers(Arc<Mutex<HashMap<String, String>>>);

impl AttemptWorkers {
    fn record(&self, attempt_key: String, worker: String) {
        if let Ok(mut workers) = self.0.lock() {
            workers.insert(attempt_key, worker);
        }
    }

    pub fn worker_of(&self, identity: &CallIdentity) -> Option<String> {
        let workers = self.0.lock().ok()?;
        workers.get(&attempt_key(identity)).cloned()
    }
}

/// The attempt's key in its stage: the same attempt of the same run always gets the same one
/// (its workflow id adds the stage's execution, see `AttemptDispatcher`).
pub fn attempt_key(identity: &CallIdentity) -> String {
    format!(
        "stagegate-{}-{}-{}-{}-{}-{}",
        identity.run_id,
        identity.stage,
        identity.phase.as_str(),
        identity.agent,
        identity.artifact.as_deref().unwrap_or("-"),
        identity.attempt
    )
}

/// Sends every attempt of `plan` (role agents and their fallbacks, review, synthesis, QA) to
/// the cluster through `route`.
pub fn dispatch_to_cluster(plan: &mut StagePlan, route: &Arc<AttemptRoute>) {
    let agents =
        plan.agents
            .iter_mut()
            .chain([&mut plan.reviewer, &mut plan.synthesizer, &mut plan.qa]);
    for agent in agents {
        for handle in std::iter::once(&mut agent.backend).chain(agent.fallback.as_mut()) {
            let remote = RemoteBackend {
                local: handle.backend.clone(),
                name: handle.name.clone(),
                route: route.clone(),
            };
            *handle = BackendHandle {
                name: handle.name.clone(),
                backend: Arc::new(remote),
            };
        }
    }
}

/// A backend whose attempts run on the cluster.
struct RemoteBackend {
    /// The backend as built here: its kind and fingerprint.
    local: Arc<dyn Backend>,
    name: String,
    route: Arc<AttemptRoute>,
}

impl Backend for RemoteBackend {
    fn kind(&self) -> &'static str {
        self.local.kind()
    }

    fn fingerprint(&self) -> String {
        self.local.fingerprint()
    }

    fn run(&self, request: AgentRequest) -> BoxFuture<AgentOutcome> {
        let noted = self.run_noted(request);
        Box::pin(async move { noted.await.outcome })
    }

    fn run_noted(&self, request: AgentRequest) -> BoxFuture<NotedOutcome> {
        let route = self.route.clone();
        let backend = self.name.clone();
        let task_queue = route.task_queue(self.local.kind());
        Box::pin(async move { run_on_cluster(&route, &task_queue, backend, request).await })
    }
}

async fn run_on_cluster(
    route: &AttemptRoute,
    task_queue: &str,
    backend: String,
    request: AgentRequest,
) -> NotedOutcome {
    let failed = |failure: Failure| AttemptOutcomeWire::failed(failure).into_noted();
    let remaining = request.deadline.saturating_duration_since(Instant::now());
    let attempt_key = attempt_key(&request.identity);
    let wire = AttemptRequest {
        origin: route.origin.clone(),
        backend,
        identity: request.identity.clone(),
        prompt: request.prompt.to_string(),
        timeout_ms: duration_ms(remaining),
        memory_limit_bytes: request.memory_limit_bytes,
        output_cap_bytes: request.output_cap_bytes,
        kill_grace_ms: duration_ms(request.kill_grace),
        materials: MaterialsWire::from_materials(&request.materials),
    };
    let packed = pack(
        &wire,
        &format!("the prompt of attempt {attempt_key}"),
        "make the stage's inputs smaller, or run it in process (without [cluster])",
    );
    let task = match packed {
        Ok(text) => AttemptTask {
            limit_ms: duration_ms(remaining + REPORT_SLACK),
            request: text,
        },
        Err(error) => return failed(Failure::permanent(error.to_string())),
    };
    let dispatcher = &route.dispatcher;
    let answer = tokio::select! {
        answer = dispatcher.run(task_queue, &attempt_key, task) => answer,
        () = request.cancel.cancelled() => {
            // Best effort: a worker that never hears of it stops at the attempt's deadline.
            let _ = dispatcher.cancel(&attempt_key).await;
            return failed(Failure::Cancelled);
        }
        () = tokio::time::sleep_until(request.deadline + REPORT_SLACK) => {
            let _ = dispatcher.cancel(&attempt_key).await;
            return failed(Failure::TimedOut { after_ms: duration_ms(remaining) });
        }
    };
    match answer {
        Ok(answer) => {
            route.workers.record(attempt_key, answer.worker);
            match unpack::<AttemptOutcomeWire>(&answer.outcome) {
                Ok(outcome) => outcome.into_noted(),
                Err(error) => failed(Failure::permanent(format!(
                    "the worker's answer cannot be read ({error}); do all workers run the same stagegate version?"
                ))),
            }
        }
        // The cluster gave the attempt up (its workers were lost again and again): a failure
        // the engine's retry policy may try again, as a new attempt.
        Err(error) => failed(Failure::retryable(format!(
            "the cluster lost the attempt: {error}"
        ))),
    }
}
