//! `stagegate restore RUN [--stage STAGE] [--force]`: puts the feature directory back as it was
//! before a gate's approval published into it — every file it replaced comes back from
//! `.stagegate/runs/RUN/STAGE/replaced/`, every file it created is removed.
//!
//! Only files that still hold what the approval published are touched: a file edited since is
//! someone's newer work, and is left alone (named, exit 1) unless `--force`.

use stagegate_store::{PublicationRecord, atomic_write, file_hash};

use crate::error::{AppError, Exit};
use crate::output_style::info_line;
use crate::runner::find_run;
use crate::session::Session;

pub async fn restore(
    session: &Session,
    run_id: &str,
    stage: Option<&str>,
    force: bool,
) -> Result<Exit, AppError> {
    let run = find_run(session, run_id).await?;
    let mut publications = Vec::new();
    for candidate in run.stages.iter().rev() {
        if stage.is_some_and(|stage| stage != candidate) {
            continue;
        }
        if let Some(publication) = session.store.publication(&run.id, candidate).await? {
            publications.push(publication);
        }
    }
    if publications.is_empty() {
        return Err(AppError::usage(format!(
            "run {} published nothing{}; there is nothing to restore\nhint: `stagegate status {}` shows its gates",
            run.id,
            stage
                .map(|stage| format!(" at the {stage} gate"))
                .unwrap_or_default(),
            run.id
        )));
    }
    let feature = session.feature_of_run(&run.feature_dir);
    // Every file is checked before the first is touched.
    let mut changed_since = Vec::new();
    for publication in &publications {
        for (name, hash) in &publication.artifacts {
            let current = file_hash(&feature.dir.join(name)).ok();
            if current.as_deref().is_some_and(|current| current != hash) {
                changed_since.push(format!("{}/{name}", feature.key));
            }
        }
    }
    if !changed_since.is_empty() && !force {
        return Err(AppError::Refused {
            message: format!(
                "these files changed since run {} published them: {}\nnothing was restored\nhint: `stagegate restore {} --force` restores them anyway (their current content is lost)",
                run.id,
                changed_since.join(", "),
                run.id
            ),
        });
    }
    for publication in &publications {
        restore_publication(session, &feature.dir, &feature.key, publication)?;
    }
    Ok(Exit::Done)
}

/// Puts back what one approval replaced and removes what it created.
fn restore_publication(
    session: &Session,
    feature_dir: &std::path::Path,
    feature_key: &str,
    publication: &PublicationRecord,
) -> Result<(), AppError> {
    let kept_dir = session
        .store
        .run_dir(&publication.run_id)
        .replaced_dir(&publication.stage);
    for (name, _) in &publication.artifacts {
        let target = feature_dir.join(name);
        let kept = kept_dir.join(name);
        match std::fs::read(&kept) {
            Ok(previous) => {
                atomic_write(&target, &previous)?;
                info_line!(
                    "restored {feature_key}/{name} as it was before the {} gate",
                    publication.stage
                );
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                match std::fs::remove_file(&target) {
                    Ok(()) => info_line!(
                        "removed {feature_key}/{name}, which the {} gate had created",
                        publication.stage
                    ),
                    Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                    Err(error) => return Err(error.into()),
                }
            }
            Err(error) => return Err(error.into()),
        }
    }
    Ok(())
}
