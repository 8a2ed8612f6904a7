//! stagegate runs on Temporal: each stage of a run is a workflow whose activity runs the stage
//! on any worker and whose gate is an update, decided once.
//!
//! The crate knows nothing of stages' contents: a stage's request and its product travel as
//! JSON text that the `stagegate` binary writes and reads, and the binary supplies the
//! `StageExecutor` that a worker runs. Without the `temporal` feature the crate is empty.
#![cfg(feature = "temporal")]

mod address;
mod client;
mod error;
mod gate;
mod stage_activity;
mod stage_workflow;
mod worker;

pub use address::ClusterAddress;
pub use client::ClusterClient;
pub use error::ClusterError;
pub use gate::{DecisionReply, GateDecision, GatePhase, GateView};
pub use stage_activity::{Checkpoint, StageAnswer, StageExecutor, StageTask};
pub use worker::run_worker;
