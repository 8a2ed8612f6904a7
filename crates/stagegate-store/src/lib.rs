//! stagegate's durable state.
//!
//! `.stagegate/` at the repository root holds an SQLite database (`state.db`: runs, the event log,
//! attempts, gates, decisions, approvals bound to content hashes, the cache of agent outputs, the
//! locks of running stages) and `runs/<run-id>/` with every attempt's prompt, output and stderr
//! and the staged artifacts. The CLI's recorder appends each engine event here *before* acting on
//! it, so the state after a crash is a replay of the log.
//!
//! This crate knows nothing of the engine: events arrive as `(kind, payload)` pairs.
//!
//! Files in the person's feature directory are written only by [`publish`], one
//! [`atomic_write`] per artifact.

mod atomic_write;
mod chunking;
mod content_hash;
mod error;
mod publish;
mod records;
mod run_dir;
mod schema;
mod store;

pub use atomic_write::atomic_write;
pub use content_hash::{content_hash, file_hash};
pub use error::StoreError;
pub use publish::{PublishedFile, publish, publish_approved, remove_stale_temporaries};
pub use records::{
    ApprovalRecord, AttemptRecord, CacheEntry, DecisionKind, DecisionRecord, EventRecord,
    GateRecord, GateState, LineComment, LineCommentRecord, LockRecord, NewPublication, NewRun,
    ParseNameError, PublicationRecord, RunRecord, RunState, RunUnlock,
};
pub use run_dir::RunDir;
pub use store::{
    Accepted, AttemptKey, AttemptText, BatchWrite, BatchWriter, DecisionRequest, GateDecision,
    Refused, RunViewSnapshot, SavedRunView, Store, TextKind,
};
