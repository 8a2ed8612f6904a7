//! A worker: hosts the stage workflow, the attempt workflow and their activities on the task
//! queue, and the attempts of the repositories it serves on their own queues, until it is
//! stopped.

use std::sync::Arc;

use futures_util::future::try_join_all;
use temporalio_sdk::{Runtime, Worker, WorkerOptions};

use crate::address::ClusterAddress;
use crate::attempt_activity::{AttemptActivities, AttemptExecutor};
use crate::attempt_workflow::AttemptWorkflow;
use crate::client::ClusterClient;
use crate::error::ClusterError;
use crate::stage_activity::{StageActivities, StageExecutor};
use crate::stage_workflow::StageWorkflow;

/// What a worker runs, and under which name.
pub struct WorkerSetup {
    /// Shown as the worker of every attempt it runs (`HOST:PID` unless named).
    pub name: String,
    pub stages: Arc<dyn StageExecutor>,
    /// Attempts that any worker may run (the task queue's).
    pub attempts: Arc<dyn AttemptExecutor>,
    /// Attempts only workers with a checkout may run: a task queue per repository served, each
    /// with the executor that runs in that checkout.
    pub repositories: Vec<(String, Arc<dyn AttemptExecutor>)>,
}

/// Runs a worker for `address` with `setup` until the process ends or a worker fails.
pub async fn run_worker(address: &ClusterAddress, setup: WorkerSetup) -> Result<(), ClusterError> {
    let failed = |error: &dyn std::fmt::Display| ClusterError::Worker(error.to_string());
    let runtime = Runtime::from_current_tokio(Default::default()).map_err(|e| failed(&e))?;
    let client = ClusterClient::connect(address).await?;
    let mut options = WorkerOptions::new(address.task_queue.clone())
        .client_identity_override(setup.name.clone())
        .register_workflow::<StageWorkflow>()
        .map_err(|e| failed(&e))?
        .register_workflow::<AttemptWorkflow>()
        .map_err(|e| failed(&e))?
        .register_activities(StageActivities {
            executor: setup.stages,
        })
        .register_activities(AttemptActivities {
            executor: setup.attempts,
            worker: setup.name.clone(),
        })
        .build();
    let mut workers =
        vec![Worker::new(&runtime, client.client().clone(), options).map_err(|e| failed(&e))?];
    for (task_queue, executor) in setup.repositories {
        options = WorkerOptions::new(task_queue)
            .client_identity_override(setup.name.clone())
            .register_workflow::<AttemptWorkflow>()
            .map_err(|e| failed(&e))?
            .register_activities(AttemptActivities {
                executor,
                worker: setup.name.clone(),
            })
            .build();
        workers
            .push(Worker::new(&runtime, client.client().clone(), options).map_err(|e| failed(&e))?);
    }
    try_join_all(workers.iter_mut().map(Worker::run))
        .await
        .map(|_| ())
        .map_err(|e| failed(&e))
}
