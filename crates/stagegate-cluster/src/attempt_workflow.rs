//! One agent attempt as a tiny workflow of one activity, started by a stage's coordinator.
//!
//! Why a workflow and not an activity of the stage's workflow: the coordinator is itself an
//! activity (it runs the engine, whose loop is not deterministic workflow code), and an activity
//! cannot schedule activities. A workflow can be started from anywhere with a client, and its id
//! is the attempt's (`stagegate-{run}-{stage}-{phase}-{agent}-{artifact}-{attempt}-{stage's
//! workflow run}`): a coordinator that takes a lost one's stage over starts the same ids again
//! and is given the attempts already running or finished instead of new ones.

use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{WorkflowContext, WorkflowResult};

use crate::activity_options::heartbeating;
use crate::attempt_activity::{AttemptActivities, AttemptAnswer, AttemptTask};

/// Runs of an attempt's activity: each lost worker costs one. The attempt's own failures never
/// fail the activity (they are in its answer), so this retries lost workers only.
const MAX_ACTIVITY_RUNS: u32 = 5;

#[workflow]
#[derive(Default)]
pub struct AttemptWorkflow;

#[workflow_methods]
impl AttemptWorkflow {
    #[run]
    pub async fn run(
        context: &mut WorkflowContext<Self>,
        task: AttemptTask,
    ) -> WorkflowResult<AttemptAnswer> {
        let options = heartbeating(task.limit_ms, MAX_ACTIVITY_RUNS);
        let answer = context
            .execute_activity(AttemptActivities::run_attempt, task, options)
            .await?;
        Ok(answer)
    }
}
