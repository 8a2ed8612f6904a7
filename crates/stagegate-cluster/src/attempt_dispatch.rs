//! The coordinator's side of an attempt: start the attempt's workflow (or find the one already
//! started under its id) and wait for its answer.

use temporalio_client::errors::WorkflowStartError;
use temporalio_client::{
    Client, WorkflowCancelOptions, WorkflowGetResultOptions, WorkflowIdConflictPolicy,
    WorkflowIdReusePolicy, WorkflowStartOptions,
};

use crate::attempt_activity::{AttemptAnswer, AttemptTask};
use crate::attempt_workflow::AttemptWorkflow;
use crate::error::ClusterError;

/// Sends attempts to the cluster, on behalf of one stage's coordinator.
#[derive(Clone)]
pub struct AttemptDispatcher {
    client: Client,
    task_queue: String,
    /// The stage workflow's run: the same for every coordinator of one execution of the stage
    /// (so a takeover re-attaches), new when the stage is started again (so `resume` after a
    /// failed stage asks its agents afresh instead of being given their old failures).
    scope: String,
}

impl std::fmt::Debug for AttemptDispatcher {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("AttemptDispatcher")
            .field("task_queue", &self.task_queue)
            .finish_non_exhaustive()
    }
}

impl AttemptDispatcher {
    pub(crate) fn new(client: Client, task_queue: String, scope: String) -> Self {
        AttemptDispatcher {
            client,
            task_queue,
            scope,
        }
    }

    /// The workflow id of the attempt `attempt_key` (unique within its stage and run) in this
    /// execution of the stage.
    fn workflow_id(&self, attempt_key: &str) -> String {
        format!("{attempt_key}-{}", self.scope)
    }

    /// The task queue of the stage's workflow: every worker serves it.
    pub fn task_queue(&self) -> &str {
        &self.task_queue
    }

    /// Runs `task` as the attempt `attempt_key` on a worker of `task_queue`, and waits for its
    /// answer. An attempt already started under this key in this execution of the stage (by a
    /// coordinator that was lost) is not started again: its answer is the one waited for.
    pub async fn run(
        &self,
        task_queue: &str,
        attempt_key: &str,
        task: AttemptTask,
    ) -> Result<AttemptAnswer, ClusterError> {
        let attempt_id = self.workflow_id(attempt_key);
        let options = WorkflowStartOptions::new(task_queue.to_owned(), attempt_id.clone())
            // Running: attach to it. Finished: keep its answer rather than run it twice.
            .id_conflict_policy(WorkflowIdConflictPolicy::UseExisting)
            .id_reuse_policy(WorkflowIdReusePolicy::RejectDuplicate)
            .build();
        match self
            .client
            .start_workflow(AttemptWorkflow::run, task, options)
            .await
        {
            Ok(_) | Err(WorkflowStartError::AlreadyStarted { .. }) => {}
            Err(error) => return Err(ClusterError::refused("starting an agent attempt", error)),
        }
        self.client
            .get_workflow_handle::<AttemptWorkflow>(attempt_id.clone())
            .get_result(WorkflowGetResultOptions::default())
            .await
            .map_err(|error| ClusterError::WorkflowFailed {
                workflow_id: attempt_id,
                message: error.to_string(),
            })
    }

    /// Asks the attempt `attempt_key` to stop (the stage was cancelled or ran out of time).
    pub async fn cancel(&self, attempt_key: &str) -> Result<(), ClusterError> {
        self.client
            .get_workflow_handle::<AttemptWorkflow>(self.workflow_id(attempt_key))
            .cancel(WorkflowCancelOptions::default())
            .await
            .map_err(|error| ClusterError::refused("cancelling an agent attempt", error))
    }
}
