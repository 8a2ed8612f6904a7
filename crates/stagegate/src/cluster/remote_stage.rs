//! The user's side of a stage on the cluster: start (or find again) the stage's workflow with
//! everything a worker needs, wait until the product is at the gate, and replay the stage's
//! events into this machine's subscribers — the store records the attempts, answers and staged
//! artifacts exactly as for a stage run here, so `status`, `runs`, `metrics`, the report and the
//! dashboard read a cluster run like any other.

use std::path::Path;
use std::time::Duration;

use stagegate_cluster::{ClusterClient, StageTask};
use stagegate_engine::backend::Failure;
use stagegate_engine::event::{Event, EventSink};
use stagegate_engine::prompt::{NamedText, TEMPLATE_OVERRIDE_DIR};
use stagegate_engine::stage::{StageError, StageProduct};
use stagegate_settings::{CONFIG_FILE_NAME, Settings};

use super::payload::{PackError, pack, unpack};
use super::wire::{StageOutcomeWire, StageReport, StageRequest, WireEvent};
use super::{ClusterMarker, cluster_error};
use crate::error::AppError;

/// Slack beyond the stage's own limit (`timeouts.stage`, which the engine enforces) before the
/// cluster gives the activity up: time for a worker to start and to report.
const ACTIVITY_SLACK: Duration = Duration::from_secs(120);

/// In a cluster run's directory: the worker of each attempt.
pub const ATTEMPT_WORKERS_FILE: &str = "attempt-workers.jsonl";

/// Where the stage runs and what it reads.
pub struct RemoteStage<'a> {
    pub marker: &'a ClusterMarker,
    /// The run's directory: the workers of its attempts are written there.
    pub run_dir: &'a Path,
    pub repo_root: &'a Path,
    pub config_file: Option<&'a Path>,
    pub settings: &'a Settings,
    pub run_id: &'a str,
    pub stage: &'a str,
    pub feature_key: &'a str,
    pub inputs: &'a [NamedText],
}

/// Runs the stage on the cluster and replays its events into `sink`: the product, or why the
/// stage did not reach its gate.
pub async fn produce_remotely<S: EventSink>(
    stage: &RemoteStage<'_>,
    sink: &mut S,
) -> Result<Result<StageProduct, StageError>, AppError> {
    let request = request(stage)?;
    let task = StageTask {
        run_id: stage.run_id.to_owned(),
        stage: stage.stage.to_owned(),
        limit_ms: u64::try_from((stage.settings.timeouts.stage + ACTIVITY_SLACK).as_millis())
            .unwrap_or(u64::MAX),
        request: pack(
            &request,
            &format!("the request of run {}'s {} stage (its inputs, settings and templates)", stage.run_id, stage.stage),
            "make the stage's inputs smaller (spec.md, plan.md, the constitution), or run it in process: unset [cluster] / STAGEGATE_TEMPORAL_ADDRESS / --temporal",
        )
        .map_err(|error| match error {
            PackError::TooLarge(_) => AppError::usage(error.to_string()),
            PackError::Encode(_) => AppError::internal(error.to_string()),
        })?,
    };
    let client = ClusterClient::connect(&stage.marker.address())
        .await
        .map_err(cluster_error)?;
    client.start_stage(task).await.map_err(cluster_error)?;
    let view = client
        .wait_for_gate(stage.run_id, stage.stage)
        .await
        .map_err(cluster_error)?;
    let product = view.product.ok_or_else(|| {
        AppError::internal(format!(
            "run {}'s {} stage failed on the cluster: {}\nhint: the workers' output says more; `stagegate resume {}` tries again once the cause is fixed",
            stage.run_id,
            stage.stage,
            view.failure.as_deref().unwrap_or("no product"),
            stage.run_id
        ))
    })?;
    let report: StageReport = unpack(&product).map_err(|error| {
        AppError::internal(format!(
            "the product of run {}'s {} stage cannot be read ({error}); is the worker the same stagegate version?",
            stage.run_id, stage.stage
        ))
    })?;
    record_workers(stage.run_dir, &report.events)?;
    let events: Vec<Event> = report
        .events
        .into_iter()
        .map(|event| event.into_event())
        .collect();
    sink.emit_all(&events)
        .await
        .map_err(|error| AppError::internal(error.to_string()))?;
    Ok(match report.outcome {
        StageOutcomeWire::Product(product) => Ok(product.into_product()),
        StageOutcomeWire::QuorumNotMet { reason, failures } => {
            Err(StageError::QuorumNotMet { reason, failures })
        }
        StageOutcomeWire::Failed { message } => Err(StageError::PhaseFailed {
            phase: "stage",
            agent: "the worker".to_owned(),
            failure: Failure::permanent(message),
        }),
    })
}

fn request(stage: &RemoteStage<'_>) -> Result<StageRequest, AppError> {
    let config_path = stage
        .config_file
        .map_or_else(|| stage.repo_root.join(CONFIG_FILE_NAME), Path::to_path_buf);
    let config = match std::fs::read_to_string(&config_path) {
        Ok(text) => Some(text),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
        Err(error) => return Err(error.into()),
    };
    let mut templates = Vec::new();
    if let Ok(entries) = std::fs::read_dir(stage.repo_root.join(TEMPLATE_OVERRIDE_DIR)) {
        for entry in entries.flatten() {
            if let (Some(name), Ok(text)) = (
                entry.file_name().to_str().map(str::to_owned),
                std::fs::read_to_string(entry.path()),
            ) {
                templates.push((name, text));
            }
        }
    }
    templates.sort();
    let environment =
        stagegate_settings::LoadOptions::from_process_env(stage.repo_root.into()).environment;
    Ok(StageRequest {
        run_id: stage.run_id.to_owned(),
        stage: stage.stage.to_owned(),
        feature_key: stage.feature_key.to_owned(),
        config,
        environment,
        concurrency: None,
        templates,
        inputs: stage
            .inputs
            .iter()
            .map(|input| (input.name.clone(), input.content.clone()))
            .collect(),
        repository: stage.marker.repository.clone(),
    })
}

/// Which worker ran each attempt, one JSON line an attempt, appended to the run's
/// `attempt-workers.jsonl`: the store keeps attempts as in process, this says where they ran.
fn record_workers(run_dir: &Path, events: &[WireEvent]) -> Result<(), AppError> {
    use std::io::Write as _;
    let mut lines = String::new();
    for wire in events {
        if let (Event::AttemptFinished { identity, .. }, Some(worker)) = (&wire.event, &wire.worker)
        {
            let line = serde_json::json!({
                "stage": identity.stage,
                "phase": identity.phase.as_str(),
                "agent": identity.agent,
                "artifact": identity.artifact,
                "attempt": identity.attempt,
                "worker": worker,
            });
            lines.push_str(&line.to_string());
            lines.push('\n');
        }
    }
    if lines.is_empty() {
        return Ok(());
    }
    std::fs::create_dir_all(run_dir)?;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(run_dir.join(ATTEMPT_WORKERS_FILE))?;
    file.write_all(lines.as_bytes())?;
    Ok(())
}
