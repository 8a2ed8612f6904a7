//! Gate decisions, the same whether a person decides at the terminal prompt or later from
//! another process (`stagegate approve | reject | modify`).
//!
//! Approving publishes the staged artifacts into the feature directory (each atomically)
//! and then records the approvals bound to their content, the decision and the closed gate.
//! Publishing first means a crash in between leaves a pending gate whose approval can simply be
//! given again (publishing the same bytes twice changes nothing); it never leaves a recorded
//! approval of files that were not written.

use stagegate_engine::event::{DecisionKind, Event, EventSink, now_ms};
use stagegate_settings::Settings;
use stagegate_store::{
    ApprovalRecord, DecisionRecord, GateState, RunRecord, Store, file_hash, publish,
};

use crate::error::AppError;
use crate::stage_inputs::{artifact_subject, input_subject};
use crate::workspace::Feature;

/// Who decided, for the audit trail.
pub fn decided_by() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// Publishes `stage`'s staged artifacts and records the approval. Returns the published
/// `(name, hash)` pairs.
pub async fn approve<S: EventSink>(
    store: &Store,
    settings: &Settings,
    run: &RunRecord,
    feature: &Feature,
    stage: &str,
    note: Option<String>,
    sink: &mut S,
) -> Result<Vec<(String, String)>, AppError> {
    let staged = store.run_dir(&run.id).staged_artifacts(stage)?;
    if staged.is_empty() {
        return Err(AppError::internal(format!(
            "run {} has no staged artifacts for stage {stage} in {}\nhint: the run directory may have been deleted; run the stage again",
            run.id,
            store.run_dir(&run.id).staged_dir(stage).display()
        )));
    }
    let published = publish(&staged, &feature.dir)?;
    let at = now_ms();
    for (name, hash) in &published {
        store
            .record_approval(&ApprovalRecord {
                feature_dir: feature.key.clone(),
                subject: artifact_subject(name),
                path: format!("{}/{name}", feature.key),
                content_hash: hash.clone(),
                run_id: Some(run.id.clone()),
                stage: Some(stage.to_owned()),
                approved_at_ms: at,
            })
            .await?;
    }
    // The inputs as they were when this gate approved, so that later stages can tell whether
    // they changed since (spec.md edited after plan.md was approved).
    let inputs = settings
        .stages
        .get(stage)
        .map(|stage| stage.inputs.clone())
        .unwrap_or_default();
    for input in inputs {
        let Ok(hash) = file_hash(&feature.dir.join(&input)) else {
            continue;
        };
        store
            .record_approval(&ApprovalRecord {
                feature_dir: feature.key.clone(),
                subject: input_subject(stage, &input),
                path: format!("{}/{input}", feature.key),
                content_hash: hash,
                run_id: Some(run.id.clone()),
                stage: Some(stage.to_owned()),
                approved_at_ms: at,
            })
            .await?;
    }
    record_decision(
        store,
        run,
        stage,
        DecisionKind::Approve,
        None,
        note,
        None,
        sink,
    )
    .await?;
    store
        .close_gate(&run.id, stage, GateState::Approved)
        .await?;
    Ok(published)
}

/// Records a rejection; nothing is published.
pub async fn reject<S: EventSink>(
    store: &Store,
    run: &RunRecord,
    stage: &str,
    reason: String,
    sink: &mut S,
) -> Result<(), AppError> {
    if reason.trim().is_empty() {
        return Err(AppError::usage(
            "a rejection needs a reason\nhint: stagegate reject --reason \"what is wrong\"",
        ));
    }
    record_decision(
        store,
        run,
        stage,
        DecisionKind::Reject,
        Some(reason),
        None,
        None,
        sink,
    )
    .await?;
    store
        .close_gate(&run.id, stage, GateState::Rejected)
        .await?;
    Ok(())
}

/// Records a modification (the gate stays pending: the modified artifacts need a decision).
pub async fn record_modification<S: EventSink>(
    store: &Store,
    run: &RunRecord,
    stage: &str,
    feedback: Option<String>,
    diff: String,
    sink: &mut S,
) -> Result<(), AppError> {
    record_decision(
        store,
        run,
        stage,
        DecisionKind::Modify,
        None,
        feedback,
        Some(diff),
        sink,
    )
    .await
}

#[expect(
    clippy::too_many_arguments,
    reason = "one record's fields, named at every call"
)]
async fn record_decision<S: EventSink>(
    store: &Store,
    run: &RunRecord,
    stage: &str,
    kind: DecisionKind,
    reason: Option<String>,
    note: Option<String>,
    diff: Option<String>,
    sink: &mut S,
) -> Result<(), AppError> {
    let at = now_ms();
    store
        .record_decision(&DecisionRecord {
            id: None,
            run_id: run.id.clone(),
            stage: stage.to_owned(),
            kind: match kind {
                DecisionKind::Approve => stagegate_store::DecisionKind::Approve,
                DecisionKind::Reject => stagegate_store::DecisionKind::Reject,
                DecisionKind::Modify => stagegate_store::DecisionKind::Modify,
            },
            reason: reason.clone(),
            note: note.clone(),
            diff: diff.clone(),
            decided_by: decided_by(),
            decided_at_ms: at,
        })
        .await?;
    sink.emit(&Event::GateDecided {
        run_id: run.id.clone(),
        stage: stage.to_owned(),
        decision: kind,
        reason,
        note,
        diff,
        at_ms: at,
    })
    .await
    .map_err(|error| AppError::internal(error.to_string()))?;
    Ok(())
}

/// A unified diff of one artifact's change, empty when nothing changed.
pub fn artifact_diff(name: &str, before: &str, after: &str) -> String {
    if before == after {
        return String::new();
    }
    similar::TextDiff::from_lines(before, after)
        .unified_diff()
        .header(&format!("a/{name}"), &format!("b/{name}"))
        .to_string()
}
