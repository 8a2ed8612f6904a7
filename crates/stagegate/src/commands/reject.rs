//! `stagegate reject [RUN] --reason TEXT`

use stagegate_engine::event::{Event, EventSink, StageEnd, now_ms};
use stagegate_store::RunState;

use crate::decide;
use crate::error::{AppError, Exit};
use crate::pending::pending_gate;
use crate::recorder::Recorder;
use crate::session::Session;

pub async fn reject(
    session: &Session,
    run_id: Option<&str>,
    reason: String,
) -> Result<Exit, AppError> {
    let (run, stage) = pending_gate(session, run_id).await?;
    let mut recorder = Recorder::new(session.store.clone(), &run.id);
    decide::reject(&session.store, &run, &stage, reason, &mut recorder).await?;
    session
        .store
        .update_run(&run.id, RunState::Rejected, Some(&stage))
        .await?;
    recorder
        .emit(&Event::RunFinished {
            run_id: run.id.clone(),
            end: StageEnd::Rejected,
            at_ms: now_ms(),
        })
        .await
        .map_err(|error| AppError::internal(error.to_string()))?;
    eprintln!(
        "rejected the {stage} gate of run {}; nothing was published",
        run.id
    );
    Ok(Exit::Done)
}
