//! The worker's side of a stage: the stage runs here exactly as in a user's process (the same
//! settings, prompts, plan, adaptive rules and engine), in a scratch repository built from the
//! request, since a worker needs no checkout. Every answer that finishes is published as the
//! activity's checkpoint, so that a worker taking the stage over after a crash runs no agent
//! that had finished.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use stagegate_cluster::{Checkpoint, StageAnswer, StageExecutor, StageTask};
use stagegate_engine::adaptive::{Resources, adapt};
use stagegate_engine::event::{Event, EventSink, SinkError};
use stagegate_engine::prompt::{Prompts, TEMPLATE_OVERRIDE_DIR};
use stagegate_engine::stage::{StageContext, StageError, run_stage_memoized};
use stagegate_engine::stage_plan::plan_stage;
use stagegate_settings::{CONFIG_FILE_NAME, LoadOptions};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::wire::{
    FinishedAnswers, ProductWire, StageOutcomeWire, StageReport, StageRequest, WireEvent, named,
};
use crate::runner::backend_registry;
use crate::scores::{input_scores, score_inputs};

/// Runs the stages a worker is given.
pub struct Executor;

impl StageExecutor for Executor {
    fn run_stage(
        &self,
        task: StageTask,
        checkpoint: Option<Checkpoint>,
        progress: watch::Sender<Option<Checkpoint>>,
    ) -> BoxFuture<'static, Result<StageAnswer, String>> {
        Box::pin(async move {
            let request: StageRequest = serde_json::from_str(&task.request)
                .map_err(|error| format!("the stage request cannot be read: {error}"))?;
            let finished: FinishedAnswers = checkpoint
                .and_then(|text| serde_json::from_str(&text).ok())
                .unwrap_or_default();
            let report = run(request, finished, progress).await?;
            let at_gate = matches!(report.outcome, StageOutcomeWire::Product(_));
            let product = report
                .encode()
                .map_err(|error| format!("the stage's report cannot be written: {error}"))?;
            Ok(StageAnswer { at_gate, product })
        })
    }
}

async fn run(
    request: StageRequest,
    finished: FinishedAnswers,
    progress: watch::Sender<Option<Checkpoint>>,
) -> Result<StageReport, String> {
    let scratch = tempfile::tempdir().map_err(|error| format!("no scratch directory: {error}"))?;
    let root = scratch.path().to_path_buf();
    let feature_dir = root.join(&request.feature_key);
    std::fs::create_dir_all(&feature_dir).map_err(|error| error.to_string())?;
    if let Some(config) = &request.config {
        std::fs::write(root.join(CONFIG_FILE_NAME), config).map_err(|error| error.to_string())?;
    }
    if !request.templates.is_empty() {
        let dir = root.join(TEMPLATE_OVERRIDE_DIR);
        std::fs::create_dir_all(&dir).map_err(|error| error.to_string())?;
        for (name, text) in &request.templates {
            std::fs::write(dir.join(name), text).map_err(|error| error.to_string())?;
        }
    }
    let options = LoadOptions {
        repo_root: root.clone(),
        environment: request.environment.clone(),
        concurrency: request.concurrency,
        ..LoadOptions::default()
    };
    let settings = stagegate_settings::load(&options)
        .map_err(|error| format!("the run's settings do not load on this worker: {error}"))?
        .settings;
    let mut plan = plan_stage(&settings, &request.stage, &mut backend_registry())
        .map_err(|error| format!("stage {} cannot be planned here: {error}", request.stage))?;
    let inputs = named(request.inputs.clone());
    let scores = score_inputs(&inputs);
    adapt(
        &mut plan,
        &settings.adaptive,
        Some(input_scores(&scores)),
        Resources::detect(),
    );
    let prompts = Prompts::load(Some(&root)).map_err(|error| error.to_string())?;
    let context = StageContext {
        run_id: request.run_id.clone(),
        repo_root: root,
        feature_dir,
        inputs: Arc::new(inputs),
        prompts: Arc::new(prompts),
        cancel: CancellationToken::new(),
    };
    let memo: HashMap<String, Arc<str>> = finished.memo();
    let finished = Arc::new(Mutex::new(Finished {
        answers: finished,
        changed: false,
    }));
    let flusher = tokio::spawn(publish_checkpoints(finished.clone(), progress));
    let mut sink = ReportingSink {
        events: Vec::new(),
        finished,
    };
    let result = run_stage_memoized(&plan, &context, &mut sink, Some(&memo)).await;
    flusher.abort();
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

/// How often the finished answers are written out for the heartbeat: writing them on every
/// answer would cost the square of the stage's agents.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// The answers finished so far, and whether any came in since the last checkpoint.
struct Finished {
    answers: FinishedAnswers,
    changed: bool,
}

async fn publish_checkpoints(
    finished: Arc<Mutex<Finished>>,
    progress: watch::Sender<Option<Checkpoint>>,
) {
    let mut every = tokio::time::interval(CHECKPOINT_EVERY);
    loop {
        every.tick().await;
        let checkpoint = {
            let Ok(mut finished) = finished.lock() else {
                return;
            };
            if !finished.changed {
                continue;
            }
            finished.changed = false;
            serde_json::to_string(&finished.answers).ok()
        };
        if checkpoint.is_some() {
            progress.send_replace(checkpoint);
        }
    }
}

/// Keeps every event for the user's machine, and each finished answer for the checkpoint.
struct ReportingSink {
    events: Vec<WireEvent>,
    finished: Arc<Mutex<Finished>>,
}

impl EventSink for ReportingSink {
    async fn emit(&mut self, event: &Event) -> Result<(), SinkError> {
        self.events.push(WireEvent::from_event(event));
        if let Event::AttemptFinished {
            cache_key: Some(key),
            output,
            ..
        } = event
            && let Ok(mut finished) = self.finished.lock()
        {
            finished
                .answers
                .answers
                .insert(key.clone(), output.to_string());
            finished.changed = true;
        }
        Ok(())
    }
}
