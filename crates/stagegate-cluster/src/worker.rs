//! A worker: hosts the stage workflow and its activity, and takes work from the task queue
//! until it is stopped.

use std::sync::Arc;

use temporalio_sdk::{Runtime, Worker, WorkerOptions};

use crate::address::ClusterAddress;
use crate::client::ClusterClient;
use crate::error::ClusterError;
use crate::stage_activity::{StageActivities, StageExecutor};
use crate::stage_workflow::StageWorkflow;

/// Runs a worker for `address` with `executor` until the process ends or the worker fails.
pub async fn run_worker(
    address: &ClusterAddress,
    executor: Arc<dyn StageExecutor>,
) -> Result<(), ClusterError> {
    let runtime = Runtime::from_current_tokio(Default::default())
        .map_err(|error| ClusterError::Worker(error.to_string()))?;
    let client = ClusterClient::connect(address).await?;
    let options = WorkerOptions::new(address.task_queue.clone())
        .register_workflow::<StageWorkflow>()
        .map_err(|error| ClusterError::Worker(error.to_string()))?
        .register_activities(StageActivities { executor })
        .build();
    let mut worker = Worker::new(&runtime, client.client().clone(), options)
        .map_err(|error| ClusterError::Worker(error.to_string()))?;
    worker
        .run()
        .await
        .map_err(|error| ClusterError::Worker(error.to_string()))
}
