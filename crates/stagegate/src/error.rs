//! Every way a command can end other than success, each with its documented exit code.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | done (every gate approved) |
//! | 1 | internal or I/O error; or refused because of what runs (a stage locked by a live run) |
//! | 2 | usage or configuration error |
//! | 3 | stage failed (too few agents succeeded, even sequentially) |
//! | 4 | rejected at a gate |
//! | 5 | a stage input is missing or stale |
//! | 6 | the gate was decided (or its artifacts modified) by someone else first; nothing changed |
//! | 10 | stopped at a gate awaiting a decision |

use std::process::ExitCode;

use stagegate_settings::ConfigError;

/// The documented exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Done = 0,
    Internal = 1,
    Usage = 2,
    StageFailed = 3,
    Rejected = 4,
    InputMissing = 5,
    AlreadyDecided = 6,
    AwaitingDecision = 10,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        ExitCode::from(exit as u8)
    }
}

/// A command's failure: a message that says what, where and how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A usage or configuration problem outside the TOML file (unknown stage, bad backend).
    #[error("{message}")]
    Usage { message: String },
    /// A stage input is missing or stale.
    #[error("{message}")]
    InputMissing { message: String },
    #[error("stage {stage} failed: {message}")]
    StageFailed { stage: String, message: String },
    #[error("{message}")]
    Internal { message: String },
    /// A decision lost: the gate was decided first (`status`), or its artifacts were modified
    /// since the decider saw them (`status` is `None`).
    #[error("{message}")]
    AlreadyDecided {
        status: Option<stagegate_run::GateStatus>,
        message: String,
    },
    /// Refused because of what is running now (a stage locked by a live run, `unlock` of a live
    /// holder): not a mistake in the command, so not a usage error.
    #[error("{message}")]
    Refused { message: String },
}

impl AppError {
    pub fn usage(message: impl Into<String>) -> Self {
        AppError::Usage {
            message: message.into(),
        }
    }

    pub fn internal(message: impl Into<String>) -> Self {
        AppError::Internal {
            message: message.into(),
        }
    }

    pub fn refused(message: impl Into<String>) -> Self {
        AppError::Refused {
            message: message.into(),
        }
    }

    pub fn input_missing(message: impl Into<String>) -> Self {
        AppError::InputMissing {
            message: message.into(),
        }
    }

    pub fn exit(&self) -> Exit {
        match self {
            AppError::Config(_) | AppError::Usage { .. } => Exit::Usage,
            AppError::InputMissing { .. } => Exit::InputMissing,
            AppError::StageFailed { .. } => Exit::StageFailed,
            AppError::Internal { .. } | AppError::Refused { .. } => Exit::Internal,
            AppError::AlreadyDecided { .. } => Exit::AlreadyDecided,
        }
    }
}

impl From<stagegate_store::StoreError> for AppError {
    fn from(error: stagegate_store::StoreError) -> Self {
        match error {
            locked @ stagegate_store::StoreError::Locked { .. } => {
                AppError::refused(locked.to_string())
            }
            other => AppError::internal(other.to_string()),
        }
    }
}

impl From<stagegate_engine::stage_plan::PlanError> for AppError {
    fn from(error: stagegate_engine::stage_plan::PlanError) -> Self {
        AppError::usage(error.to_string())
    }
}

impl From<stagegate_engine::prompt::PromptError> for AppError {
    fn from(error: stagegate_engine::prompt::PromptError) -> Self {
        AppError::usage(error.to_string())
    }
}

impl From<std::io::Error> for AppError {
    fn from(error: std::io::Error) -> Self {
        AppError::internal(error.to_string())
    }
}
