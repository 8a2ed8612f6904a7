//! stagegate's stage engine.
//!
//! A stage runs as: inputs checked → parallel role agents (limit, timeouts, retries, fallback,
//! quorum) → review → synthesis (once per artifact) → QA (with bounded rework) → gate.
//! The engine produces [`event::Event`]s and never prints, stores or counts anything itself:
//! subscribers (the terminal display, the `--json` printer, the store's recorder) consume the
//! one stream.

pub mod adaptive;
mod agent_call;
mod agent_error;
pub mod backend;
mod bounded_output;
pub mod command_agent;
pub mod context_budget;
pub mod envelope;
pub mod event;
mod headless_arguments;
pub mod line_comment;
mod memory_usage;
pub mod mock_agent;
pub mod output_format;
mod process_group;
pub mod prompt;
mod prompt_layout;
pub mod qa_check;
pub mod quorum;
pub mod retry_policy;
pub mod secrets;
pub mod stage;
pub mod stage_plan;
pub mod supervisor;
