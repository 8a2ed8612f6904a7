//! stagegate runs on Temporal: each stage of a run is a workflow whose activity coordinates the
//! stage on any worker and whose gate is an update, decided once; each agent attempt of the
//! stage is a workflow of its own, run by any worker of the task queue.
//!
//! The crate knows nothing of stages' contents: a stage's request and its product travel as
//! JSON text that the `stagegate` binary writes and reads, and the binary supplies the
//! `StageExecutor` that a worker runs. Without the `temporal` feature the crate is empty.
#![cfg(feature = "temporal")]

mod activity_options;
mod address;
mod attempt_activity;
mod attempt_dispatch;
mod attempt_workflow;
mod client;
mod error;
mod gate;
mod stage_activity;
mod stage_workflow;
mod worker;

pub use address::{ClusterAddress, repository_queue};
pub use attempt_activity::{AttemptAnswer, AttemptExecutor, AttemptTask};
pub use attempt_dispatch::AttemptDispatcher;
pub use client::ClusterClient;
pub use error::ClusterError;
pub use gate::{DecisionReply, GateDecision, GatePhase, GateView, NEXT_ROUND};
pub use stage_activity::{StageAnswer, StageExecutor, StageTask};
pub use worker::{WorkerSetup, run_worker};
