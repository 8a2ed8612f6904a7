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
mod attempt_executor;
#[cfg(feature = "cluster")]
mod attempt_wire;
#[cfg(feature = "cluster")]
mod executor;
#[cfg(feature = "cluster")]
mod payload;
#[cfg(feature = "cluster")]
mod remote_backend;
#[cfg(feature = "cluster")]
mod remote_gate;
#[cfg(feature = "cluster")]
mod remote_stage;
#[cfg(feature = "cluster")]
mod scratch;
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

/// A repository a worker serves: its name and its checkout.
pub type ServedRepository = (String, std::path::PathBuf);

/// `--repo NAME=PATH`, with PATH an existing directory.
pub fn served_repository(text: &str) -> Result<ServedRepository, AppError> {
    let Some((name, path)) = text
        .split_once('=')
        .filter(|(name, path)| !name.trim().is_empty() && !path.is_empty())
    else {
        return Err(AppError::usage(format!(
            "--repo {text}: expected NAME=PATH\nhint: --repo shop=/srv/checkouts/shop serves runs whose [cluster] repository is \"shop\""
        )));
    };
    let checkout = std::path::Path::new(path).canonicalize().map_err(|error| {
        AppError::usage(format!(
            "--repo {text}: the checkout {path} cannot be used ({error})\nhint: give the directory of a clone of the repository"
        ))
    })?;
    if !checkout.is_dir() {
        return Err(AppError::usage(format!(
            "--repo {text}: {path} is not a directory\nhint: give the directory of a clone of the repository"
        )));
    }
    Ok((name.trim().to_owned(), checkout))
}

/// `stagegate worker`: `name` is shown as the worker of the attempts it runs; the CLI agents
/// of runs on `repositories` run here, in their checkouts.
#[cfg(feature = "cluster")]
pub async fn run_worker(
    cluster: &ClusterSettings,
    name: Option<String>,
    repositories: Vec<ServedRepository>,
) -> Result<(), AppError> {
    use std::sync::Arc;
    let address = marker::ClusterMarker::from_settings(cluster).address();
    let name = name.unwrap_or_else(default_worker_name);
    eprintln!(
        "worker {name} on {} (namespace {}, task queue {}); Ctrl-C stops it",
        address.temporal, address.namespace, address.task_queue
    );
    let repositories = repositories
        .into_iter()
        .map(|(repository, checkout)| {
            eprintln!("  serves repository {repository} in {}", checkout.display());
            let queue = stagegate_cluster::repository_queue(&address.task_queue, &repository);
            let runner = attempt_executor::AttemptRunner::in_checkout(checkout);
            (
                queue,
                Arc::new(runner) as Arc<dyn stagegate_cluster::AttemptExecutor>,
            )
        })
        .collect();
    let setup = stagegate_cluster::WorkerSetup {
        name,
        stages: Arc::new(executor::Executor),
        attempts: Arc::new(attempt_executor::AttemptRunner::default()),
        repositories,
    };
    stagegate_cluster::run_worker(&address, setup)
        .await
        .map_err(cluster_error)
}

#[cfg(not(feature = "cluster"))]
pub async fn run_worker(
    _cluster: &ClusterSettings,
    _name: Option<String>,
    _repositories: Vec<ServedRepository>,
) -> Result<(), AppError> {
    Err(not_built())
}

/// `HOST:PID`: unique among the workers of a cluster, and says where to look.
#[cfg(feature = "cluster")]
fn default_worker_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|host| host.trim().to_owned())
        .filter(|host| !host.is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    format!("{host}:{}", std::process::id())
}

#[cfg(feature = "cluster")]
pub(crate) fn cluster_error(error: stagegate_cluster::ClusterError) -> AppError {
    AppError::internal(format!(
        "{error}\nhint: check that the Temporal frontend in [cluster] is up and that a `stagegate worker` serves its task queue"
    ))
}
