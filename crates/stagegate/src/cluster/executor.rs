//! The worker's side of a stage, its coordinator: the stage's engine runs here exactly as in a
//! user's process (the same settings, prompts, plan, adaptive rules and loop), in a scratch
//! repository built from the request, since a worker needs no checkout — but each agent
//! attempt goes to the cluster, so any worker runs it, and a coordinator that takes a lost
//! one's stage over is given the attempts already finished instead of running them again (see
//! `remote_backend`).

use std::sync::Arc;

use futures_util::future::BoxFuture;
use stagegate_cluster::{AttemptDispatcher, StageAnswer, StageExecutor, StageTask};
use stagegate_engine::adaptive::{Resources, adapt};
use stagegate_engine::event::{Event, EventSink, SinkError};
use stagegate_engine::prompt::Prompts;
use stagegate_engine::stage::{StageContext, StageError, run_stage};
use stagegate_engine::stage_plan::plan_stage;
use tokio_util::sync::CancellationToken;

use super::attempt_wire::AttemptOrigin;
use super::payload::{pack, unpack};
use super::remote_backend::{AttemptRoute, AttemptWorkers, dispatch_to_cluster};
use super::scratch::{Scratch, ScratchSource};
use super::wire::{ProductWire, StageOutcomeWire, StageReport, StageRequest, WireEvent, named};
use crate::runner::backend_registry;
use crate::scores::{input_scores, score_inputs};

/// Runs the stages a worker is given.
pub struct Executor;

impl StageExecutor for Executor {
    fn run_stage(
        &self,
        task: StageTask,
        attempts: AttemptDispatcher,
    ) -> BoxFuture<'static, Result<StageAnswer, String>> {
        Box::pin(async move {
            let request: StageRequest = unpack(&task.request).map_err(|error| {
                format!("the stage request cannot be read ({error}); do the user and the workers run the same stagegate version?")
            })?;
            let report = run(request, attempts).await?;
            let at_gate = matches!(report.outcome, StageOutcomeWire::Product(_));
            let product = pack(
                &report,
                &format!("the report of run {}'s {} stage", task.run_id, task.stage),
                "the stage's answers and artifacts are too large for one Temporal payload; run it in process (without [cluster]), or raise the cluster's limit.blobSize.error",
            )
            .map_err(|error| error.to_string())?;
            Ok(StageAnswer { at_gate, product })
        })
    }
}

async fn run(request: StageRequest, attempts: AttemptDispatcher) -> Result<StageReport, String> {
    let scratch = Scratch::build(&ScratchSource {
        config: request.config.as_deref(),
        environment: &request.environment,
        templates: &request.templates,
        feature_key: &request.feature_key,
        concurrency: request.concurrency,
    })?;
    let settings = &scratch.settings;
    let mut plan = plan_stage(settings, &request.stage, &mut backend_registry())
        .map_err(|error| format!("stage {} cannot be planned here: {error}", request.stage))?;
    let inputs = named(request.inputs.clone());
    let scores = score_inputs(&inputs);
    adapt(
        &mut plan,
        &settings.adaptive,
        Some(input_scores(&scores)),
        Resources::detect(),
    );
    let workers = AttemptWorkers::default();
    let route = AttemptRoute {
        dispatcher: attempts,
        origin: AttemptOrigin {
            config: request.config.clone(),
            environment: request.environment.clone(),
            feature_key: request.feature_key.clone(),
        },
        workers: workers.clone(),
        repository: request.repository.clone(),
    };
    dispatch_to_cluster(&mut plan, &Arc::new(route));
    let prompts = Prompts::load(Some(&scratch.root)).map_err(|error| error.to_string())?;
    let context = StageContext {
        run_id: request.run_id.clone(),
        repo_root: scratch.root.clone(),
        feature_dir: scratch.feature_dir.clone(),
        inputs: Arc::new(inputs),
        prompts: Arc::new(prompts),
        cancel: CancellationToken::new(),
    };
    let mut sink = ReportingSink {
        events: Vec::new(),
        workers,
    };
    let result = run_stage(&plan, &context, &mut sink).await;
    let outcome = match result {
        Ok(product) => StageOutcomeWire::Product(ProductWire::from_product(&product)),
        Err(StageError::QuorumNotMet { reason, failures }) => {
            StageOutcomeWire::QuorumNotMet { reason, failures }
        }
        Err(other) => StageOutcomeWire::Failed {
            message: other.to_string(),
        },
    };
    Ok(StageReport {
        events: sink.events,
        outcome,
    })
}

/// Keeps every event for the user's machine, an attempt's with the worker that ran it.
struct ReportingSink {
    events: Vec<WireEvent>,
    workers: AttemptWorkers,
}

impl EventSink for ReportingSink {
    async fn emit(&mut self, event: &Event) -> Result<(), SinkError> {
        let mut wire = WireEvent::from_event(event);
        if let Event::AttemptFinished { identity, .. } = event {
            wire.worker = self.workers.worker_of(identity);
        }
        self.events.push(wire);
        Ok(())
    }
}
