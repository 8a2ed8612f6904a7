//! The mark of a cluster run: where its workflows are, kept in its run directory so that every
//! later command (`approve`, `resume`, `status`) talks to the same cluster, whatever the
//! settings say by then.

use std::path::Path;

use serde::{Deserialize, Serialize};
use stagegate_settings::ClusterSettings;

use crate::error::AppError;

const FILE_NAME: &str = "cluster.json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterMarker {
    pub temporal: String,
    pub namespace: String,
    pub task_queue: String,
    /// `[cluster] repository`: the workers with this checkout run its `command` agents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
}

impl ClusterMarker {
    pub fn from_settings(cluster: &ClusterSettings) -> Self {
        ClusterMarker {
            temporal: cluster.temporal.clone(),
            namespace: cluster.namespace.clone(),
            task_queue: cluster.task_queue.clone(),
            repository: cluster.repository.clone(),
        }
    }

    /// The marker in `run_dir`, if the run is a cluster run.
    pub fn read(run_dir: &Path) -> Result<Option<Self>, AppError> {
        let path = run_dir.join(FILE_NAME);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(error.into()),
        };
        serde_json::from_str(&text).map(Some).map_err(|error| {
            AppError::internal(format!(
                "{} is damaged: {error}\nhint: it names the Temporal cluster of the run; restore it or write {{\"temporal\": \"host:port\", \"namespace\": \"default\", \"task_queue\": \"stagegate\"}}",
                path.display()
            ))
        })
    }

    pub fn write(&self, run_dir: &Path) -> Result<(), AppError> {
        std::fs::create_dir_all(run_dir)?;
        let text = serde_json::to_string_pretty(self)
            .map_err(|error| AppError::internal(error.to_string()))?;
        std::fs::write(run_dir.join(FILE_NAME), text)?;
        Ok(())
    }

    #[cfg(feature = "cluster")]
    pub fn address(&self) -> stagegate_cluster::ClusterAddress {
        stagegate_cluster::ClusterAddress {
            temporal: self.temporal.clone(),
            namespace: self.namespace.clone(),
            task_queue: self.task_queue.clone(),
        }
    }
}
