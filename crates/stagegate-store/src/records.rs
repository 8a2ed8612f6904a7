//! The records the store keeps, as plain data.
//!
//! They mirror the tables one to one and derive `Serialize`, so that `stagegate status --json`
//! can print them as they are. Enumerations are stored as their snake_case names rather than
//! numbers, so that the database stays readable with the `sqlite3` shell.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A run about to be created: one `stagegate run STAGE...` invocation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewRun {
    /// Names `.stagegate/runs/<id>/`; must be unique.
    pub id: String,
    /// The feature directory, as the CLI resolved it (relative to the repository root).
    pub feature_dir: String,
    /// The stages to run, in order.
    pub stages: Vec<String>,
    /// The resolved settings, as JSON text, recorded so that a report shows what the run
    /// used. Text rather than a `serde_json::Value`: a 10,000-agent stage's settings cost about
    /// 15 ms to build as a value, clone and serialise again on the way to their row.
    pub settings_json: String,
    pub created_at_ms: i64,
}

/// A run as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub id: String,
    pub feature_dir: String,
    pub stages: Vec<String>,
    pub state: RunState,
    pub current_stage: Option<String>,
    pub settings_json: serde_json::Value,
    pub created_at_ms: i64,
    /// Set by the store whenever the state changes.
    pub updated_at_ms: i64,
}

/// One event of a run's log, in the engine's own words.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    /// Position in the database-wide log; strictly increasing, never reused.
    pub seq: i64,
    pub run_id: String,
    pub kind: String,
    pub payload: serde_json::Value,
    /// Set by the store when the event was appended.
    pub recorded_at_ms: i64,
}

/// One attempt of one agent (or the reviewer, synthesizer, QA) in one phase of one stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptRecord {
    pub run_id: String,
    pub stage: String,
    /// `agent`, `review`, `synthesis` or `qa`.
    pub phase: String,
    pub agent: String,
    /// 1 for the first attempt.
    pub attempt: u32,
    pub backend: String,
    pub started_at_ms: i64,
    /// `None` while the attempt runs.
    pub finished_at_ms: Option<i64>,
    /// `ok`, `failed`, `timed_out`, `cancelled` or `cached`; `None` while the attempt runs.
    pub outcome: Option<String>,
    pub failure_reason: Option<String>,
    /// [`content_hash`](crate::content_hash) of the output.
    pub output_hash: Option<String>,
    pub output_bytes: Option<i64>,
    /// The agent's `CONFIDENCE:` line, 0.0 to 1.0.
    pub confidence: Option<f64>,
    /// Tokens the model reported reading, when the backend reports usage.
    pub input_tokens: Option<i64>,
    /// Tokens the model reported writing.
    pub output_tokens: Option<i64>,
    /// What the call cost in US dollars, when the agent itself reported it.
    pub cost_usd: Option<f64>,
}

/// The approval gate of one stage of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateRecord {
    pub run_id: String,
    pub stage: String,
    /// The question put to the person, e.g. "Planning artifacts synthesized. Approve to proceed?".
    pub question: String,
    /// The staged artifact names the decision covers.
    pub artifacts: Vec<String>,
    pub state: GateState,
    /// The round of staged artifacts the gate shows: 1 as the stage staged them, one more per
    /// modification.
    pub round: u32,
    pub opened_at_ms: i64,
    /// Set by the store when the gate is decided.
    pub closed_at_ms: Option<i64>,
}

/// One decision a person took at a gate; the audit trail, never changed once written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionRecord {
    /// Assigned by the store; ignored by [`Store::record_decision`](crate::Store::record_decision).
    pub id: Option<i64>,
    pub run_id: String,
    pub stage: String,
    pub kind: DecisionKind,
    /// Why it was rejected (required for a rejection by the CLI, not by the store).
    pub reason: Option<String>,
    pub note: Option<String>,
    /// The person's edits, as a unified diff, for a modification.
    pub diff: Option<String>,
    /// Who decided, e.g. the user name or `terminal`.
    pub decided_by: String,
    pub decided_at_ms: i64,
}

/// An approval of a file's content: it counts only while the file still hashes to
/// `content_hash`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalRecord {
    pub feature_dir: String,
    /// `spec`, `implementation`, `artifact:plan.md`, ...
    pub subject: String,
    /// The approved file, relative to the repository root.
    pub path: String,
    pub content_hash: String,
    /// The run whose gate approved it; `None` for `stagegate approve spec`.
    pub run_id: Option<String>,
    pub stage: Option<String>,
    pub approved_at_ms: i64,
}

/// The effect of an approval, recorded with it: which staged artifacts (by content hash) go
/// into the feature directory, and the stage's inputs as they were when the gate approved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PublicationRecord {
    pub run_id: String,
    pub stage: String,
    /// The approve decision this is the effect of.
    pub decision_id: i64,
    pub feature_dir: String,
    /// `(artifact name, content hash)` of every staged artifact, as approved.
    pub artifacts: Vec<(String, String)>,
    /// `(input file name, content hash)` of the stage's inputs at the approval.
    pub inputs: Vec<(String, String)>,
    /// Set once the files are published and their approvals recorded.
    pub done_at_ms: Option<i64>,
    pub decided_at_ms: i64,
}

/// What an approval is to publish, as the decider computed it under the decision's lock.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NewPublication {
    pub feature_dir: String,
    pub artifacts: Vec<(String, String)>,
    pub inputs: Vec<(String, String)>,
}

/// A cached output of one agent call, found again by its key (a hash of everything that went
/// into the call: the prompt, the inputs, the agent's settings).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CacheEntry {
    pub key: String,
    /// `agent`, `review`, `synthesis` or `qa`: the phases have their own time to live.
    pub phase: String,
    pub output: String,
    /// [`content_hash`](crate::content_hash) of `output`.
    pub output_hash: String,
    /// The run that recorded it; that run reuses it even after it expires (on `resume`).
    pub run_id: String,
    pub created_at_ms: i64,
    /// Valid while the clock is before this instant.
    pub expires_at_ms: i64,
}

/// The lock a run holds on one stage of one feature directory while it runs that stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockRecord {
    pub feature_dir: String,
    pub stage: String,
    pub run_id: String,
    /// The process running it; a lock whose process is gone is stale.
    pub pid: u32,
    pub acquired_at_ms: i64,
    /// The boot the holder ran in (`/proc/sys/kernel/random/boot_id`); `None` in locks written
    /// by schema version 1 or where it could not be read.
    pub boot_id: Option<String>,
    /// When the holder started, in clock ticks since boot (field 22 of `/proc/<pid>/stat`):
    /// with `pid` and `boot_id`, what tells the holder from a later process given the same pid.
    /// `None` like `boot_id`.
    pub start_ticks: Option<u64>,
}

/// What [`Store::remove_run_locks`](crate::Store::remove_run_locks) did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunUnlock {
    /// These locks were removed; none when the run held no lock.
    Removed(Vec<LockRecord>),
    /// Nothing was removed: these locks' holders are alive.
    HeldByLiveProcess(Vec<LockRecord>),
}

/// An unknown name for one of the store's enumerations.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {value:?}")]
pub struct ParseNameError {
    what: &'static str,
    value: String,
}

/// Declares an enumeration stored by its snake_case name.
macro_rules! named_enum {
    ($(#[$meta:meta])* $name:ident, $what:literal, { $($(#[$variant_meta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$variant_meta])* $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The snake_case name stored in the database and printed by the CLI.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl FromStr for $name {
            type Err = ParseNameError;

            fn from_str(value: &str) -> Result<Self, Self::Err> {
                match value {
                    $($text => Ok($name::$variant),)+
                    _ => Err(ParseNameError { what: $what, value: value.to_owned() }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str(self.as_str())
            }
        }
    };
}

named_enum!(
    /// Where a run stands.
    RunState, "run state", {
        Running => "running",
        /// Stopped at a gate (exit 10); `resume` continues once it is decided.
        AwaitingDecision => "awaiting_decision",
        /// A gate was approved from another process and stages remain: `resume` continues.
        Paused => "paused",
        Completed => "completed",
        Rejected => "rejected",
        Failed => "failed",
        /// The process stopped without finishing (Ctrl-C, a crash found at the next start).
        Interrupted => "interrupted",
        /// A newer run of the same stage reached its gate while this one waited at it.
        Superseded => "superseded",
    }
);

named_enum!(
    /// Where a gate stands.
    GateState, "gate state", {
        Pending => "pending",
        Approved => "approved",
        Rejected => "rejected",
        /// Closed because a newer run of the same feature and stage reached its gate.
        Superseded => "superseded",
    }
);

/// The store's gate states are the run state machine's, stored by name.
impl From<GateState> for stagegate_run::GateStatus {
    fn from(state: GateState) -> Self {
        match state {
            GateState::Pending => stagegate_run::GateStatus::Pending,
            GateState::Approved => stagegate_run::GateStatus::Approved,
            GateState::Rejected => stagegate_run::GateStatus::Rejected,
            GateState::Superseded => stagegate_run::GateStatus::Superseded,
        }
    }
}

impl From<stagegate_run::GateStatus> for GateState {
    fn from(status: stagegate_run::GateStatus) -> Self {
        match status {
            stagegate_run::GateStatus::Pending => GateState::Pending,
            stagegate_run::GateStatus::Approved => GateState::Approved,
            stagegate_run::GateStatus::Rejected => GateState::Rejected,
            stagegate_run::GateStatus::Superseded => GateState::Superseded,
        }
    }
}

named_enum!(
    /// What a person decided at a gate.
    DecisionKind, "decision kind", {
        Approve => "approve",
        Reject => "reject",
        /// Edited (or reworked) the staged artifacts; the gate asks again afterwards.
        Modify => "modify",
        /// Closed by stagegate: a newer run of the same stage reached its gate.
        Supersede => "supersede",
    }
);

#[cfg(test)]
#[expect(
    clippy::unwrap_used,
    reason = "a failing test should stop at the failing line"
)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_serde() {
        for state in RunState::ALL {
            assert_eq!(state.as_str().parse::<RunState>().unwrap(), *state);
            assert_eq!(serde_json::to_value(state).unwrap(), state.as_str());
        }
        for state in GateState::ALL {
            assert_eq!(state.as_str().parse::<GateState>().unwrap(), *state);
            assert_eq!(serde_json::to_value(state).unwrap(), state.as_str());
        }
        for kind in DecisionKind::ALL {
            assert_eq!(kind.as_str().parse::<DecisionKind>().unwrap(), *kind);
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
        }
        assert_eq!(RunState::AwaitingDecision.to_string(), "awaiting_decision");
    }

    #[test]
    fn unknown_names_are_refused() {
        let error = "stopped".parse::<RunState>().unwrap_err();
        assert_eq!(error.to_string(), "unknown run state \"stopped\"");
        assert!("Approve".parse::<DecisionKind>().is_err());
    }
}

/// A person's comment on lines of a staged artifact, sent with a modification (like a
/// pull-request review comment). Lines are 1-based and inclusive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineComment {
    pub artifact: String,
    pub first_line: u32,
    pub last_line: u32,
    /// The commented lines as the person saw them.
    pub quoted: String,
    pub comment: String,
}

/// A [`LineComment`] as recorded: which decision sent it, on which round.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineCommentRecord {
    pub decision_id: i64,
    pub stage: String,
    pub round: u32,
    pub comment: LineComment,
}
