//! Which gate a decision goes to: the named run's pending gate, or the one pending gate.

use stagegate_run::GateStatus;
use stagegate_store::{DecisionKind, GateRecord, RunRecord};

use crate::error::AppError;
use crate::runner::find_run;
use crate::session::Session;

/// The pending gate of `run_id`, or the only pending gate when `run_id` is `None`.
pub async fn pending_gate(
    session: &Session,
    run_id: Option<&str>,
) -> Result<(RunRecord, String), AppError> {
    let pending = session.store.pending_gates().await?;
    let gate: &GateRecord = match run_id {
        Some(run_id) => {
            let run = find_run(session, run_id).await?;
            let Some(gate) = pending.iter().find(|gate| gate.run_id == run.id) else {
                if let Some(decided) = already_decided(session, &run).await? {
                    return Err(decided);
                }
                return Err(AppError::usage(format!(
                    "run {} has no gate waiting for a decision (it is {})\nhint: `stagegate status {}` shows where it stands",
                    run.id,
                    run.state.as_str(),
                    run.id
                )));
            };
            gate
        }
        None => match pending.as_slice() {
            [] => {
                return Err(AppError::usage(
                    "no gate is waiting for a decision\nhint: `stagegate status` lists the runs",
                ));
            }
            [gate] => gate,
            several => {
                return Err(AppError::usage(format!(
                    "{} gates are waiting for a decision; name the run:\n{}",
                    several.len(),
                    several
                        .iter()
                        .map(|gate| format!(
                            "  {} ({}: {})",
                            gate.run_id, gate.stage, gate.question
                        ))
                        .collect::<Vec<_>>()
                        .join("\n")
                )));
            }
        },
    };
    let run = find_run(session, &gate.run_id).await?;
    Ok((run, gate.stage.clone()))
}

/// The refusal for a run whose last gate was decided already (a decision that lost a race, or
/// came late): who decided, how and why, with exit code 6, as for a decision refused by the
/// gate itself.
async fn already_decided(session: &Session, run: &RunRecord) -> Result<Option<AppError>, AppError> {
    let decisions = session.store.decisions(&run.id).await?;
    let Some(last) = decisions
        .iter()
        .rev()
        .find(|decision| decision.kind != DecisionKind::Modify)
    else {
        return Ok(None);
    };
    let status = match last.kind {
        DecisionKind::Reject => GateStatus::Rejected,
        DecisionKind::Supersede => GateStatus::Superseded,
        _ => GateStatus::Approved,
    };
    let why = last
        .reason
        .as_deref()
        .or(last.note.as_deref())
        .and_then(|text| text.lines().next())
        .map(|text| format!(": {text}"))
        .unwrap_or_default();
    Ok(Some(AppError::AlreadyDecided {
        status: Some(status),
        message: format!(
            "the {} gate of run {} was already {status} by {}{why}; nothing was changed and no gate of this run is waiting for a decision\nhint: `stagegate status {}` shows where it stands",
            last.stage, run.id, last.decided_by, run.id
        ),
    }))
}
