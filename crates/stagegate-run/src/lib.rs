//! The life of a stagegate run, as a state machine with no I/O.
//!
//! A run moves through its stages; each stage ends at a gate that a person decides. Everything
//! that may happen to a gate — approve, reject, modify (a new round of the staged artifacts) —
//! and what a run does after it, is decided here by pure functions of the current state and a
//! request. The hosts (the in-process runner, the `approve | reject | modify` commands, the
//! terminal gate, the dashboard) only ask: the store applies the answer in the same SQLite
//! transaction that read the state it was computed from, so two deciders can never both win.
//!
//! - [`gate`]: the gate's states and [`gate::decide`], the one transition function.
//! - [`resume`]: where a run picks up again, from the states of its gates.
//!
//! Nothing here prints, prompts, reads a clock or touches a file.

pub mod gate;
pub mod resume;

pub use gate::{Gate, GateStatus, Refusal, Request, RunAfter, Transition, Verb, decide};
pub use resume::{ResumePoint, resume_point};
