//! Where the cluster is: the frontend, the namespace and the task queue.

/// A Temporal frontend (`host:port`), the namespace and the task queue stagegate uses there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterAddress {
    pub temporal: String,
    pub namespace: String,
    pub task_queue: String,
}

/// The task queue of the attempts that need `repository`'s checkout: only workers that serve
/// it poll there.
pub fn repository_queue(task_queue: &str, repository: &str) -> String {
    format!("{task_queue}@{repository}")
}

impl ClusterAddress {
    /// The frontend as a URL: Temporal's tools take `host:port`, its Rust client a URL.
    pub(crate) fn url(&self) -> String {
        if self.temporal.contains("://") {
            self.temporal.clone()
        } else {
            format!("http://{}", self.temporal)
        }
    }
}
