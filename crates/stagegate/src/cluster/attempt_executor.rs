//! The worker's side of an agent attempt: build the attempt's backend from the run's settings
//! (once per run's settings, not once per attempt), run the attempt in a scratch repository (or
//! in the checkout of a repository the worker serves), and answer with its outcome, redacted.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use stagegate_cluster::AttemptExecutor;
use stagegate_engine::backend::{AgentRequest, Failure};
use stagegate_engine::stage_plan::{BackendHandle, BackendRegistry};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::attempt_wire::{AttemptOrigin, AttemptOutcomeWire, AttemptRequest};
use super::payload::{pack, unpack};
use super::scratch::{Scratch, ScratchSource};
use crate::runner::backend_registry;

/// Runs' settings a worker keeps built backends for; more, and it starts afresh (a worker
/// serves few runs at once).
const ORIGINS_KEPT: usize = 32;

/// Runs the attempts a worker is given.
#[derive(Clone, Default)]
pub struct AttemptRunner {
    /// The checkout attempts run in; `None`: a scratch repository.
    checkout: Option<PathBuf>,
    prepared: Arc<Mutex<HashMap<AttemptOrigin, Arc<Prepared>>>>,
}

/// A run's settings, loaded, and the backends built from them so far.
struct Prepared {
    scratch: Scratch,
    registry: Mutex<BackendRegistry>,
}

impl AttemptRunner {
    /// Attempts that run in `checkout`, a repository this worker serves.
    pub fn in_checkout(checkout: PathBuf) -> Self {
        AttemptRunner {
            checkout: Some(checkout),
            ..AttemptRunner::default()
        }
    }

    fn prepared(&self, origin: &AttemptOrigin) -> Result<Arc<Prepared>, String> {
        let mut prepared = self
            .prepared
            .lock()
            .map_err(|_| "a worker thread panicked".to_owned())?;
        if let Some(found) = prepared.get(origin) {
            return Ok(found.clone());
        }
        let scratch = Scratch::build(&ScratchSource {
            config: origin.config.as_deref(),
            environment: &origin.environment,
            templates: &[],
            feature_key: &origin.feature_key,
            concurrency: None,
        })?;
        // Every key the settings name is redacted from what this worker sends back.
        stagegate_engine::secrets::remember_from_settings(&scratch.settings);
        if prepared.len() >= ORIGINS_KEPT {
            prepared.clear();
        }
        let entry = Arc::new(Prepared {
            scratch,
            registry: Mutex::new(backend_registry()),
        });
        prepared.insert(origin.clone(), entry.clone());
        Ok(entry)
    }

    fn backend(&self, request: &AttemptRequest) -> Result<(Arc<Prepared>, BackendHandle), String> {
        let prepared = self.prepared(&request.origin)?;
        let handle = {
            let mut registry = prepared
                .registry
                .lock()
                .map_err(|_| "a worker thread panicked".to_owned())?;
            registry
                .resolve(
                    &prepared.scratch.settings,
                    &request.identity.agent,
                    &request.backend,
                )
                .map_err(|error| error.to_string())?
        };
        Ok((prepared, handle))
    }

    async fn run(&self, request: AttemptRequest, cancel: CancellationToken) -> AttemptOutcomeWire {
        let (prepared, handle) = match self.backend(&request) {
            Ok(found) => found,
            Err(message) => {
                return AttemptOutcomeWire::failed(Failure::permanent(format!(
                    "the attempt cannot run on this worker: {message}"
                )));
            }
        };
        let repo_root = self
            .checkout
            .clone()
            .unwrap_or_else(|| prepared.scratch.root.clone());
        let feature_dir = repo_root.join(&request.origin.feature_key);
        let agent_request = AgentRequest {
            identity: request.identity,
            prompt: request.prompt.into(),
            repo_root,
            feature_dir,
            deadline: Instant::now() + Duration::from_millis(request.timeout_ms),
            cancel,
            memory_limit_bytes: request.memory_limit_bytes,
            output_cap_bytes: request.output_cap_bytes,
            kill_grace: Duration::from_millis(request.kill_grace_ms),
            materials: Arc::new(request.materials.into_materials()),
        };
        let mut noted = handle.backend.run_noted(agent_request).await;
        stagegate_engine::secrets::redact_outcome(&mut noted.outcome);
        AttemptOutcomeWire::from_noted(noted)
    }
}

impl AttemptExecutor for AttemptRunner {
    fn run_attempt(
        &self,
        request: String,
        cancel: CancellationToken,
    ) -> BoxFuture<'static, String> {
        let runner = self.clone();
        Box::pin(async move {
            let outcome = match unpack::<AttemptRequest>(&request) {
                Ok(request) => runner.run(request, cancel).await,
                Err(error) => AttemptOutcomeWire::failed(Failure::permanent(format!(
                    "the attempt's request cannot be read ({error}); do all workers run the same stagegate version?"
                ))),
            };
            pack_outcome(outcome)
        })
    }
}

/// The outcome as it travels back; an answer too large for the cluster is a failed attempt
/// that says so (the engine's policy then treats it like an answer over the output cap).
fn pack_outcome(outcome: AttemptOutcomeWire) -> String {
    const WHAT: &str = "the agent's answer";
    const HINT: &str = "lower [defaults] output_cap_bytes below the cluster's payload limit";
    pack(&outcome, WHAT, HINT).unwrap_or_else(|error| {
        let failed = AttemptOutcomeWire::failed(Failure::permanent(error.to_string()));
        // A failure of a few hundred bytes always fits; an empty answer reads as a broken one.
        pack(&failed, WHAT, HINT).unwrap_or_default()
    })
}
