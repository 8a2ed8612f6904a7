//! Runs on a Temporal cluster (`[cluster]`): each stage of a run is a workflow on the cluster
//! whose activity runs the stage on any worker, and whose gate is decided once, through an
//! update. The user's machine keeps its own record of the run, exactly as for a run in this
//! process: it replays the stage's events into its store, decides through the workflow first
//! and then through the store, and publishes approved artifacts itself.
//!
//! A run is a cluster run when its run directory holds a [`marker::ClusterMarker`]. Without the
//! `cluster` feature this module only knows the marker and says how to get a build that runs
//! them.

mod marker;

#[cfg(feature = "cluster")]
mod executor;
#[cfg(feature = "cluster")]
mod remote_gate;
#[cfg(feature = "cluster")]
mod remote_stage;
#[cfg(feature = "cluster")]
mod wire;

pub use marker::ClusterMarker;

#[cfg(feature = "cluster")]
pub use remote_gate::decide_remotely;
#[cfg(feature = "cluster")]
pub use remote_stage::{RemoteStage, produce_remotely};

use stagegate_settings::ClusterSettings;

use crate::error::AppError;

/// Refuses `[cluster]` in a build that cannot run on a cluster, before anything is recorded.
#[cfg(not(feature = "cluster"))]
pub(crate) fn ensure_built() -> Result<(), AppError> {
    Err(not_built())
}

#[cfg(feature = "cluster")]
pub(crate) fn ensure_built() -> Result<(), AppError> {
    Ok(())
}

#[cfg(not(feature = "cluster"))]
pub(crate) fn not_built() -> AppError {
    AppError::usage(
        "this stagegate was built without Temporal support ([cluster] is set, or the run is a cluster run)\nhint: install with `cargo install stagegate --features cluster`, or unset [cluster] / STAGEGATE_TEMPORAL_ADDRESS / --temporal to run in this process",
    )
}

/// `stagegate worker`.
#[cfg(feature = "cluster")]
pub async fn run_worker(cluster: &ClusterSettings) -> Result<(), AppError> {
    let address = marker::ClusterMarker::from_settings(cluster).address();
    eprintln!(
        "worker on {} (namespace {}, task queue {}); Ctrl-C stops it",
        address.temporal, address.namespace, address.task_queue
    );
    stagegate_cluster::run_worker(&address, std::sync::Arc::new(executor::Executor))
        .await
        .map_err(cluster_error)
}

#[cfg(not(feature = "cluster"))]
pub async fn run_worker(_cluster: &ClusterSettings) -> Result<(), AppError> {
    Err(not_built())
}

#[cfg(feature = "cluster")]
pub(crate) fn cluster_error(error: stagegate_cluster::ClusterError) -> AppError {
    AppError::internal(format!(
        "{error}\nhint: check that the Temporal frontend in [cluster] is up and that a `stagegate worker` serves its task queue"
    ))
}
