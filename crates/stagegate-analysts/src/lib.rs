//! stagegate's built-in offline analysts: the `builtin` backend.
//!
//! Every agent of the default pipeline has an analyst here, written in Rust, that reads the
//! feature's spec-kit files (through [`speckit`]) and answers as a role agent, reviewer,
//! synthesizer or QA would: deterministic markdown (same input, same bytes) ending with a
//! `CONFIDENCE:` line, or a `VERDICT:` line for QA. So every stage runs on a fresh machine with
//! no model and no network, and a real model can replace any one agent by configuration.
//! [`scores`] computes the complexity and uncertainty scores behind the adaptive rules.

mod analysts;
mod builtin_agent;
mod markdown;
pub mod scores;
pub mod speckit;
mod text;

pub use builtin_agent::BuiltinAgent;
