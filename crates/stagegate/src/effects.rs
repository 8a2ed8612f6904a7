//! The effects of recorded decisions, carried out after their transaction commits and finished
//! by the next command when a crash cuts them short.
//!
//! - An approval's publication: its staged artifacts (as approved, by hash) into the feature
//!   directory, then the approvals of the artifacts and of the stage's inputs, recorded together
//!   with the publication's completion. Publishing again is harmless; the approvals are
//!   recorded once.
//! - A modification's switch to the next round of staged artifacts happens under the decision's
//!   lock; a crash before its commit leaves an unrecorded round, put back here.
//!
//! [`finish_interrupted`] runs at the start of every command, so that no command ever sees a
//! recorded approval whose files are not in place, or staged artifacts of an unrecorded round.

use stagegate_engine::event::now_ms;
use stagegate_store::{
    ApprovalRecord, PublicationRecord, Store, publish_approved, remove_stale_temporaries,
};

use crate::error::AppError;
use crate::run_lock::process_is_alive;
use crate::stage_inputs::{artifact_subject, input_subject};
use crate::workspace::Feature;

/// One artifact an approval put into the feature directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub name: String,
    pub content_hash: String,
    /// A different file of that name was there before.
    pub replaced: bool,
}

/// Publishes the approved artifacts of `(run_id, stage)` and records their approvals, if that
/// is not done yet. Returns what is published.
pub async fn finish_publication(
    store: &Store,
    feature: &Feature,
    run_id: &str,
    stage: &str,
) -> Result<Vec<Published>, AppError> {
    let Some(publication) = store.publication(run_id, stage).await? else {
        return Ok(Vec::new());
    };
    publish(store, feature, &publication).await
}

async fn publish(
    store: &Store,
    feature: &Feature,
    publication: &PublicationRecord,
) -> Result<Vec<Published>, AppError> {
    let run_dir = store.run_dir(&publication.run_id);
    let staged_dir = run_dir.staged_dir(&publication.stage);
    let keep_dir = run_dir.replaced_dir(&publication.stage);
    let files = publish_approved(
        &staged_dir,
        &feature.dir,
        &keep_dir,
        &publication.artifacts,
    )
    .map_err(
        |error| {
            AppError::internal(format!(
                "the approved artifacts of run {} ({}) could not be published into {}: {error}\nhint: fix the cause; the next stagegate command finishes the publication",
                publication.run_id, publication.stage, feature.key
            ))
        },
    )?;
    remove_stale_temporaries(&feature.dir, process_is_alive)?;
    if publication.done_at_ms.is_none() {
        let approvals = approvals_of(publication);
        store
            .complete_publication(
                &publication.run_id,
                &publication.stage,
                &approvals,
                now_ms(),
            )
            .await?;
    }
    Ok(files
        .into_iter()
        .map(|file| Published {
            name: file.name,
            content_hash: file.content_hash,
            replaced: file.replaced,
        })
        .collect())
}

/// The approvals a publication records: each artifact, and each input as it was approved.
fn approvals_of(publication: &PublicationRecord) -> Vec<ApprovalRecord> {
    let approval = |subject: String, name: &str, hash: &str| ApprovalRecord {
        feature_dir: publication.feature_dir.clone(),
        subject,
        path: format!("{}/{name}", publication.feature_dir),
        content_hash: hash.to_owned(),
        run_id: Some(publication.run_id.clone()),
        stage: Some(publication.stage.clone()),
        approved_at_ms: publication.decided_at_ms,
    };
    let artifacts = publication
        .artifacts
        .iter()
        .map(|(name, hash)| approval(artifact_subject(name), name, hash));
    let inputs = publication
        .inputs
        .iter()
        .map(|(name, hash)| approval(input_subject(&publication.stage, name), name, hash));
    artifacts.chain(inputs).collect()
}

/// Finishes what a killed stagegate left half done: publications of recorded approvals, and
/// staged artifacts switched to a round whose modification was never recorded.
pub async fn finish_interrupted(
    store: &Store,
    feature_of: impl Fn(&str) -> Feature,
) -> Result<(), AppError> {
    for publication in store.pending_publications().await? {
        let feature = feature_of(&publication.feature_dir);
        let published = publish(store, &feature, &publication).await?;
        eprintln!(
            "note: finished publishing the approved {} gate of run {} ({} file(s) into {}), which an earlier stagegate did not complete",
            publication.stage,
            publication.run_id,
            published.len(),
            feature.key
        );
    }
    for gate in store.pending_gates().await? {
        let run_dir = store.run_dir(&gate.run_id);
        // Only a switch that never committed leaves the recorded round's directory behind; a
        // crashed process's round cannot move any more, so this look needs no lock, and every
        // command's start takes the write lock only when there is something to repair.
        if !run_dir.round_dir(&gate.stage, gate.round).is_dir() {
            continue;
        }
        let repaired = store
            .with_gate_round_locked(&gate.run_id, &gate.stage, |round| {
                run_dir.repair_rounds(&gate.stage, round)
            })
            .await?;
        if let Some(repaired) = repaired
            && repaired?
        {
            eprintln!(
                "note: the {} gate of run {} shows its recorded artifacts again; a modification that an earlier stagegate did not finish was discarded",
                gate.stage, gate.run_id
            );
        }
    }
    Ok(())
}
