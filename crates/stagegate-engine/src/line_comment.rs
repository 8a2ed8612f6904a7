//! A person's comment on lines of an artifact, sent back with a rework: the synthesizer gets
//! it as structured feedback (which artifact, which lines, the text they held, the comment).

use serde::{Deserialize, Serialize};

/// Lines are 1-based and inclusive, numbered in the version the person was shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineComment {
    pub artifact: String,
    pub first_line: u32,
    pub last_line: u32,
    /// The commented lines as the person saw them.
    pub quoted: String,
    pub comment: String,
}

impl LineComment {
    /// `plan.md:42` or `plan.md:40-44`.
    pub fn location(&self) -> String {
        if self.first_line == self.last_line {
            format!("{}:{}", self.artifact, self.first_line)
        } else {
            format!("{}:{}-{}", self.artifact, self.first_line, self.last_line)
        }
    }
}
