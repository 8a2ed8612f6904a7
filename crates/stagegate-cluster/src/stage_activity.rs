//! A stage's work as one activity: the binary's [`StageExecutor`] runs it on whichever worker
//! takes it, and the activity heartbeats the executor's latest [`Checkpoint`], so that a
//! worker that takes over after a crash starts from what the lost one had finished.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use tokio::sync::watch;

/// What a stage's workflow asks a worker to run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageTask {
    pub run_id: String,
    pub stage: String,
    /// How long the activity may run (the stage's own limit, with a margin).
    pub limit_ms: u64,
    /// The stage's request (JSON text written by the binary): its inputs and settings.
    pub request: String,
}

/// What the activity returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageAnswer {
    /// The stage reached its gate (otherwise it failed, and `product` says why).
    pub at_gate: bool,
    /// The stage's product or failure (JSON text written by the binary).
    pub product: String,
}

/// What an executor has finished so far (JSON text written by the binary); a new attempt of the
/// activity starts from the last one the cluster received.
pub type Checkpoint = String;

/// Runs a stage on a worker. `checkpoint` is what an earlier attempt had finished; the executor
/// publishes its own progress on `progress`.
pub trait StageExecutor: Send + Sync + 'static {
    fn run_stage(
        &self,
        task: StageTask,
        checkpoint: Option<Checkpoint>,
        progress: watch::Sender<Option<Checkpoint>>,
    ) -> BoxFuture<'static, Result<StageAnswer, String>>;
}

/// How often the activity tells the cluster it is alive. The SDK throttles heartbeats to a
/// fraction of the heartbeat timeout, so this only bounds how stale a checkpoint can be.
const HEARTBEAT_EVERY: Duration = Duration::from_millis(500);

/// The activities a worker hosts: one, the stage.
pub(crate) struct StageActivities {
    pub(crate) executor: Arc<dyn StageExecutor>,
}

#[activities]
impl StageActivities {
    #[activity]
    pub(crate) async fn run_stage(
        self: Arc<Self>,
        context: ActivityContext,
        task: StageTask,
    ) -> Result<StageAnswer, ActivityError> {
        let checkpoint: Option<Checkpoint> =
            context.heartbeat_details().deserialize().ok().flatten();
        let (progress, mut latest) = watch::channel(None);
        let mut work = self.executor.run_stage(task, checkpoint, progress);
        let mut beat = tokio::time::interval(HEARTBEAT_EVERY);
        loop {
            tokio::select! {
                answer = &mut work => {
                    return answer.map_err(|message| ActivityError::from(StageFailure(message)));
                }
                () = context.cancelled() => return Err(ActivityError::cancelled()),
                _ = beat.tick() => {
                    let details: Option<Checkpoint> = latest.borrow_and_update().clone();
                    // A heartbeat that cannot be encoded is lost, not fatal: the next one
                    // carries a newer checkpoint.
                    let _ = context.record_heartbeat(details).await;
                }
            }
        }
    }
}

/// The executor's own error (its text names the stage and the cause).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct StageFailure(String);
