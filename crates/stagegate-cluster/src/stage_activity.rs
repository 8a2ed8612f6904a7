//! A stage's coordination as one activity: the binary's [`StageExecutor`] runs the stage's
//! engine on whichever worker takes it and sends each agent attempt to the cluster as its own
//! workflow. The activity heartbeats, so that a lost coordinator is noticed within the
//! heartbeat timeout; the worker that takes the stage over asks for the same attempts and is
//! given those already started or finished (see `attempt_workflow`).

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

use crate::attempt_dispatch::AttemptDispatcher;

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

/// Coordinates a stage on a worker, sending its agents' attempts to the cluster through
/// `attempts`.
pub trait StageExecutor: Send + Sync + 'static {
    fn run_stage(
        &self,
        task: StageTask,
        attempts: AttemptDispatcher,
    ) -> BoxFuture<'static, Result<StageAnswer, String>>;
}

/// How often the activity tells the cluster it is alive (the SDK throttles to a fraction of
/// the heartbeat timeout).
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
        let info = context.info();
        let attempts = AttemptDispatcher::new(
            context.client(),
            info.task_queue.clone(),
            info.workflow_run_id.clone().unwrap_or_default(),
        );
        let mut work = self.executor.run_stage(task, attempts);
        let mut beat = tokio::time::interval(HEARTBEAT_EVERY);
        loop {
            tokio::select! {
                answer = &mut work => {
                    return answer.map_err(|message| ActivityError::from(StageFailure(message)));
                }
                () = context.cancelled() => return Err(ActivityError::cancelled()),
                _ = beat.tick() => {
                    // A lost heartbeat is not fatal: the next one goes out half a second later.
                    let _ = context.record_heartbeat(()).await;
                }
            }
        }
    }
}

/// The executor's own error (its text names the stage and the cause).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct StageFailure(String);
