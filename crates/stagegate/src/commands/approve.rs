//! `stagegate approve [RUN|spec|implementation] [--note TEXT]`

use stagegate_engine::event::now_ms;
use stagegate_run::{RunAfter, Verb};
use stagegate_store::{ApprovalRecord, file_hash};

use crate::error::{AppError, Exit};
use crate::gate_decision::{self, Ask, Place};
use crate::input_file::{InputProblem, check_input};
use crate::output_style::info_line;
use crate::pending::pending_gate;
use crate::session::Session;
use crate::stage_inputs::{SPEC, TASKS, artifact_subject, input_subject};

pub async fn approve(
    session: &Session,
    target: Option<&str>,
    note: Option<String>,
) -> Result<Exit, AppError> {
    match target {
        Some("spec") => approve_file(session, "spec", SPEC, note).await,
        Some("implementation") => approve_file(session, "implementation", TASKS, note).await,
        Some(name) if is_stage_not_run(session, name).await? => adopt_existing(session, name).await,
        run_id => approve_gate(session, run_id, note).await,
    }
}

/// Whether `name` names a stage (id or alias) rather than a run.
async fn is_stage_not_run(session: &Session, name: &str) -> Result<bool, AppError> {
    Ok(session.settings.stage(name).is_some() && session.store.run(name).await?.is_none())
}

/// `stagegate approve STAGE`: adopts the artifacts the feature already has (a plan written with
/// spec-kit before stagegate, say) as the approved product of STAGE, bound to their current
/// content, so that the next stage can start without replacing them.
async fn adopt_existing(session: &Session, name: &str) -> Result<Exit, AppError> {
    let feature = session.feature()?;
    let stage = session
        .settings
        .stage(name)
        .ok_or_else(|| AppError::usage(format!("unknown stage {name}")))?;
    // What later stages read must be there; the rest (a summary of stagegate's own) is adopted
    // when it exists.
    let needed_later = |artifact: &&String| {
        session
            .settings
            .stages
            .values()
            .any(|other| other.id != stage.id && other.inputs.contains(artifact))
    };
    let missing: Vec<&String> = stage
        .required
        .iter()
        .filter(needed_later)
        .filter(|artifact| !feature.dir.join(artifact).is_file())
        .collect();
    if !missing.is_empty() {
        return Err(AppError::input_missing(format!(
            "cannot adopt the existing product of stage {}: {} missing in {}\nhint: write it with spec-kit, or run `stagegate run {}`",
            stage.id,
            missing
                .iter()
                .map(|name| format!("{name} is"))
                .collect::<Vec<_>>()
                .join(", "),
            feature.key,
            stage.id
        )));
    }
    let artifacts = stage.required.iter().chain(&stage.optional);
    let subjects = artifacts
        .filter_map(|artifact| {
            Some((
                artifact_subject(artifact),
                artifact,
                file_hash(&feature.dir.join(artifact)).ok()?,
            ))
        })
        .chain(stage.inputs.iter().filter_map(|input| {
            Some((
                input_subject(&stage.id, input),
                input,
                file_hash(&feature.dir.join(input)).ok()?,
            ))
        }))
        .collect::<Vec<_>>();
    let at = now_ms();
    for (subject, file, hash) in &subjects {
        session
            .store
            .record_approval(&ApprovalRecord {
                feature_dir: feature.key.clone(),
                subject: subject.clone(),
                path: format!("{}/{file}", feature.key),
                content_hash: hash.clone(),
                run_id: None,
                stage: Some(stage.id.clone()),
                approved_at_ms: at,
            })
            .await?;
        if subject.starts_with("artifact:") {
            stdout_line!("{}/{file} {}", feature.key, &hash[..hash.len().min(12)]);
        }
    }
    gate_decision::supersede_pending(
        &session.store,
        &session.settings,
        &feature,
        &stage.id,
        None,
        "the existing artifacts were adopted instead",
    )
    .await?;
    info_line!(
        "adopted the existing artifacts of {} as the approved product of stage {}; nothing was written\nhint: a later stage can start now; a change to them voids this approval",
        feature.key,
        stage.id
    );
    Ok(Exit::Done)
}

/// Binds an approval of `subject` to the file's current content.
async fn approve_file(
    session: &Session,
    subject: &str,
    file: &str,
    note: Option<String>,
) -> Result<Exit, AppError> {
    let feature = session.feature()?;
    let path = feature.dir.join(file);
    // The same rules as a stage's inputs: approving a FIFO, a link out of the repository or
    // an oversized file would only approve something no stage will read.
    match check_input(&feature.repo_root(), &path) {
        Ok(()) | Err(InputProblem::Missing) => {}
        Err(problem) => {
            return Err(AppError::input_missing(format!(
                "cannot approve {}/{file}:\n{}",
                feature.key,
                problem.describe(&format!("{}/{file}", feature.key))
            )));
        }
    }
    let hash = match file_hash(&path) {
        Ok(hash) => hash,
        // The implementation can be approved without a task list; the approval then stands
        // until one appears.
        Err(error)
            if error.kind() == std::io::ErrorKind::NotFound && subject == "implementation" =>
        {
            String::new()
        }
        Err(error) => {
            return Err(AppError::input_missing(format!(
                "cannot approve {}/{file}: {error}\nhint: write it with spec-kit first",
                feature.key
            )));
        }
    };
    session
        .store
        .record_approval(&ApprovalRecord {
            feature_dir: feature.key.clone(),
            subject: subject.to_owned(),
            path: format!("{}/{file}", feature.key),
            content_hash: hash.clone(),
            run_id: None,
            stage: None,
            approved_at_ms: now_ms(),
        })
        .await?;
    let _ = note;
    let short = &hash[..hash.len().min(12)];
    info_line!(
        "approved {subject}: {}/{file}{}",
        feature.key,
        if short.is_empty() {
            String::new()
        } else {
            format!(" (content {short})")
        }
    );
    Ok(Exit::Done)
}

async fn approve_gate(
    session: &Session,
    run_id: Option<&str>,
    note: Option<String>,
) -> Result<Exit, AppError> {
    let (run, stage) = pending_gate(session, run_id).await?;
    let feature = session.feature_of_run(&run.feature_dir);
    let place = Place {
        store: &session.store,
        settings: &session.settings,
        run: &run,
        feature: &feature,
        stage: &stage,
    };
    let ask = Ask {
        note,
        ..Ask::default()
    };
    let decided = gate_decision::decide(&place, Verb::Approve, ask).await?;
    for file in &decided.published {
        stdout_line!(
            "{}/{} {}",
            feature.key,
            file.name,
            &file.content_hash[..file.content_hash.len().min(12)]
        );
    }
    info_line!(
        "approved the {stage} gate of run {}: published {} file(s) into {}",
        run.id,
        decided.published.len(),
        feature.key
    );
    let replaced: Vec<&str> = decided
        .published
        .iter()
        .filter(|file| file.replaced)
        .map(|file| file.name.as_str())
        .collect();
    if !replaced.is_empty() {
        info_line!(
            "replaced {}; the previous versions are kept (`stagegate restore {}` brings them back)",
            replaced.join(", "),
            run.id
        );
    }
    if decided.transition.run != RunAfter::Completed {
        info_line!("hint: continue with `stagegate resume {}`", run.id);
    }
    Ok(Exit::Done)
}
