//! The user's side: start (or find again) a stage's workflow, watch it, decide its gate.

use std::time::Duration;

use temporalio_client::{
    Client, ClientOptions, Connection, ConnectionOptions, Url, WorkflowExecuteUpdateOptions,
    WorkflowIdConflictPolicy, WorkflowQueryOptions, WorkflowStartOptions,
};

use crate::address::ClusterAddress;
use crate::error::ClusterError;
use crate::gate::{DecisionReply, GateDecision, GatePhase, GateView};
use crate::stage_activity::StageTask;
use crate::stage_workflow::StageWorkflow;

/// How often [`ClusterClient::wait_for_gate`] looks at the workflow.
const POLL_EVERY: Duration = Duration::from_millis(200);
/// Looks that may fail in a row before waiting gives up (a minute and more: each failed query
/// itself waits for its timeout).
const MAX_FAILED_LOOKS: u32 = 300;

/// A connection to the cluster, for one namespace and task queue.
#[derive(Clone)]
pub struct ClusterClient {
    client: Client,
    address: ClusterAddress,
}

impl std::fmt::Debug for ClusterClient {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ClusterClient")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

/// The workflow id of a run's stage: unique per run and stage, so that starting it again (a
/// resumed run) finds the same workflow.
pub fn workflow_id(run_id: &str, stage: &str) -> String {
    format!("stagegate-{run_id}-{stage}")
}

impl ClusterClient {
    pub async fn connect(address: &ClusterAddress) -> Result<Self, ClusterError> {
        let unreachable = |message: String| ClusterError::Unreachable {
            address: address.temporal.clone(),
            message,
        };
        let url = Url::parse(&address.url()).map_err(|error| unreachable(error.to_string()))?;
        let connection = Connection::connect(ConnectionOptions::new(url).build())
            .await
            .map_err(|error| unreachable(error.to_string()))?;
        let client = Client::new(
            connection,
            ClientOptions::new(address.namespace.clone()).build(),
        )
        .map_err(|error| unreachable(error.to_string()))?;
        Ok(ClusterClient {
            client,
            address: address.clone(),
        })
    }

    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    /// Starts the stage's workflow, or finds the one already started for this run and stage.
    pub async fn start_stage(&self, task: StageTask) -> Result<(), ClusterError> {
        let id = workflow_id(&task.run_id, &task.stage);
        let options = WorkflowStartOptions::new(self.address.task_queue.clone(), id)
            .id_conflict_policy(WorkflowIdConflictPolicy::UseExisting)
            .build();
        self.client
            .start_workflow(StageWorkflow::run, task, options)
            .await
            .map_err(|error| ClusterError::refused("starting the stage's workflow", error))?;
        Ok(())
    }

    /// What the stage's workflow shows now.
    pub async fn view(&self, run_id: &str, stage: &str) -> Result<GateView, ClusterError> {
        self.client
            .get_workflow_handle::<StageWorkflow>(workflow_id(run_id, stage))
            .query(StageWorkflow::view, (), WorkflowQueryOptions::default())
            .await
            .map_err(|error| ClusterError::refused("a look at the stage's workflow", error))
    }

    /// Waits until the stage's product is in (at its gate, or failed). A look that fails is
    /// tried again: while a lost worker's workflow moves to another worker, queries time out.
    pub async fn wait_for_gate(&self, run_id: &str, stage: &str) -> Result<GateView, ClusterError> {
        let mut failed_looks = 0;
        loop {
            match self.view(run_id, stage).await {
                Ok(view) if view.phase != GatePhase::Running => return Ok(view),
                Ok(_) => failed_looks = 0,
                Err(error) if failed_looks >= MAX_FAILED_LOOKS => return Err(error),
                Err(_) => failed_looks += 1,
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    }

    /// Sends a decision to the stage's gate; the gate applies at most one.
    pub async fn decide(
        &self,
        run_id: &str,
        stage: &str,
        decision: GateDecision,
    ) -> Result<DecisionReply, ClusterError> {
        self.client
            .get_workflow_handle::<StageWorkflow>(workflow_id(run_id, stage))
            .execute_update(
                StageWorkflow::decide,
                decision,
                WorkflowExecuteUpdateOptions::default(),
            )
            .await
            .map_err(|error| ClusterError::refused("the gate decision", error))
    }
}
