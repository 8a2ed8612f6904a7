//! One agent attempt as an activity: the binary's [`AttemptExecutor`] runs it on whichever
//! worker takes it from the queue, and the activity heartbeats while it runs, so that a lost
//! worker's attempt is given to another one within the heartbeat timeout.
//!
//! The attempt's own failures (a non-zero exit, a timeout, a refused request) are part of its
//! answer, not errors of the activity: the engine on the stage's coordinator decides what to do
//! with them (its retry policy, fallback, quorum). The activity only fails when its worker is
//! lost or it is cancelled, and only then does the cluster run it again.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use tokio_util::sync::CancellationToken;

/// An attempt to run, as the coordinator sends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptTask {
    /// How long the activity may run: the attempt's own limit, with a margin to report.
    pub limit_ms: u64,
    /// The attempt's request (text written by the binary).
    pub request: String,
}

/// What an attempt answered, and which worker answered it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptAnswer {
    /// The worker's name (`stagegate worker --name`, by default `HOST:PID`).
    pub worker: String,
    /// The attempt's outcome (text written by the binary).
    pub outcome: String,
}

/// Runs one agent attempt on a worker. Never fails: a failure is written into the outcome.
/// Must return soon after `cancel` fires, leaving nothing running.
pub trait AttemptExecutor: Send + Sync + 'static {
    fn run_attempt(&self, request: String, cancel: CancellationToken)
    -> BoxFuture<'static, String>;
}

/// How often an attempt tells the cluster it is alive (the SDK throttles to a fraction of the
/// heartbeat timeout).
const HEARTBEAT_EVERY: Duration = Duration::from_millis(500);

/// The activities a worker hosts for attempts: one, the attempt.
pub(crate) struct AttemptActivities {
    pub(crate) executor: Arc<dyn AttemptExecutor>,
    pub(crate) worker: String,
}

#[activities]
impl AttemptActivities {
    #[activity]
    pub(crate) async fn run_attempt(
        self: Arc<Self>,
        context: ActivityContext,
        task: AttemptTask,
    ) -> Result<AttemptAnswer, ActivityError> {
        let cancel = CancellationToken::new();
        // Dropped (the attempt done or the activity gone), the guard stops what still runs.
        let _stop_on_exit = cancel.clone().drop_guard();
        let mut work = self.executor.run_attempt(task.request, cancel.clone());
        let mut beat = tokio::time::interval(HEARTBEAT_EVERY);
        loop {
            tokio::select! {
                outcome = &mut work => {
                    return Ok(AttemptAnswer { worker: self.worker.clone(), outcome });
                }
                () = context.cancelled() => {
                    cancel.cancel();
                    // The executor returns soon after the token fires; its outcome is moot.
                    let _ = work.await;
                    return Err(ActivityError::cancelled());
                }
                _ = beat.tick() => {
                    // A lost heartbeat is not fatal: the next one goes out half a second later.
                    let _ = context.record_heartbeat(()).await;
                }
            }
        }
    }
}
