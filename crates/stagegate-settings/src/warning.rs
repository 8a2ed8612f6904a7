//! Warnings: things in a configuration file that stagegate ignores.
//!
//! An unknown key is a warning, not an error, so that a `stagegate.toml` written for a newer
//! stagegate still works with an older one; the warning names the key path and, when a known key
//! is one typo away, the key that was probably meant.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::source_file::DEFAULTS_NAME;

/// A key that stagegate ignores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigWarning {
    /// The dotted key path: `stages.plan.concurency`.
    pub path: String,
    /// The file, as given; `None` for the embedded defaults.
    pub file: Option<PathBuf>,
    /// 1-based line of the key.
    pub line: usize,
    /// 1-based column of the key, in characters.
    pub column: usize,
    pub reason: WarningReason,
    /// The known key that was probably meant.
    pub suggestion: Option<String>,
}

/// Why a key is ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum WarningReason {
    /// No such key exists in this table.
    UnknownKey,
    /// The key exists, but not for this backend's `kind` (`model` on a `command` backend).
    UnusedByKind { kind: String },
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.file {
            Some(file) => write!(formatter, "{}", file.display())?,
            None => formatter.write_str(DEFAULTS_NAME)?,
        }
        write!(formatter, ":{}:{}: ", self.line, self.column)?;
        match &self.reason {
            WarningReason::UnknownKey => write!(formatter, "unknown key {}, ignored", self.path)?,
            WarningReason::UnusedByKind { kind } => write!(
                formatter,
                "{} is not used by backends of kind \"{kind}\", ignored",
                self.path
            )?,
        }
        if let Some(suggestion) = &self.suggestion {
            write!(formatter, " (did you mean `{suggestion}`?)")?;
        }
        Ok(())
    }
}
