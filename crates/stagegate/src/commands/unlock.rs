//! `stagegate unlock RUN [--force]`: frees the locks of a run that no longer runs, for what the
//! liveness check of `run_lock` cannot see through (a lock written by an older stagegate whose
//! pid now belongs to another process, a holder that the person knows is gone).

use stagegate_store::{LockRecord, RunState, RunUnlock};

use crate::error::{AppError, Exit};
use crate::output_style::info_line;
use crate::run_lock::holder_is_alive;
use crate::runner::find_run;
use crate::session::Session;

pub async fn unlock(session: &Session, run_id: &str, force: bool) -> Result<Exit, AppError> {
    let run = find_run(session, run_id).await?;
    let store = &session.store;
    let outcome = store
        .remove_run_locks(&run.id, |lock| !force && holder_is_alive(lock))
        .await?;
    let removed = match outcome {
        RunUnlock::HeldByLiveProcess(live) => {
            return Err(AppError::refused(format!(
                "run {} is still running: {}\nhint: stop it with Ctrl-C in its terminal, or wait for it to finish\nhint: if you know it is not running (the process is another program with the same pid), `stagegate unlock {} --force` removes its locks anyway",
                run.id,
                describe(&live),
                run.id
            )));
        }
        RunUnlock::Removed(removed) => removed,
    };
    if removed.is_empty() {
        info_line!("run {} holds no lock; nothing to do", run.id);
        return Ok(Exit::Done);
    }
    info_line!(
        "removed the lock(s) of run {}: {}",
        run.id,
        describe(&removed)
    );
    // Marked only when a lock was removed: between two stages a live run holds no lock for a
    // moment, and must not be marked interrupted for it.
    if run.state == RunState::Running {
        store
            .update_run(&run.id, RunState::Interrupted, run.current_stage.as_deref())
            .await?;
        info_line!(
            "run {} is marked interrupted\nhint: `stagegate resume {}` continues it",
            run.id,
            run.id
        );
    }
    Ok(Exit::Done)
}

/// `stage plan of specs/001-demo (process 42)`, joined.
fn describe(locks: &[LockRecord]) -> String {
    locks
        .iter()
        .map(|lock| {
            format!(
                "stage {} of {} (process {})",
                lock.stage, lock.feature_dir, lock.pid
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}
