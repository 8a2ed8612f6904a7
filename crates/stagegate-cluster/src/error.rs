//! What can go wrong talking to the cluster.

/// A failure to reach the cluster or to use a workflow on it.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cannot reach the Temporal frontend at {address}: {message}")]
    Unreachable { address: String, message: String },
    #[error("the Temporal cluster refused {action}: {message}")]
    Refused { action: String, message: String },
    #[error("the workflow of {workflow_id} failed: {message}")]
    WorkflowFailed {
        workflow_id: String,
        message: String,
    },
    #[error("the worker stopped: {0}")]
    Worker(String),
}

impl ClusterError {
    pub(crate) fn refused(action: &str, error: impl std::fmt::Display) -> Self {
        ClusterError::Refused {
            action: action.to_owned(),
            message: error.to_string(),
        }
    }
}
