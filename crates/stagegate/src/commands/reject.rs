//! `stagegate reject [RUN] --reason TEXT`

use stagegate_engine::event::{Event, EventSink, StageEnd, now_ms};
use stagegate_run::Verb;

use crate::error::{AppError, Exit};
use crate::gate_decision::{self, Ask, Place};
use crate::output_style::info_line;
use crate::pending::pending_gate;
use crate::recorder::Recorder;
use crate::session::Session;

pub async fn reject(
    session: &Session,
    run_id: Option<&str>,
    reason: String,
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
        reason: Some(reason),
        ..Ask::default()
    };
    gate_decision::decide(&place, Verb::Reject, ask).await?;
    Recorder::new(session.store.clone(), &run.id)
        .emit(&Event::RunFinished {
            run_id: run.id.clone(),
            end: StageEnd::Rejected,
            at_ms: now_ms(),
        })
        .await
        .map_err(|error| AppError::internal(error.to_string()))?;
    info_line!(
        "rejected the {stage} gate of run {}; nothing was published",
        run.id
    );
    Ok(Exit::Done)
}
