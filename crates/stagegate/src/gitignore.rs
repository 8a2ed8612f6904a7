//! Keeping stagegate's state directory (`.stagegate/`: the database, run directories, prompts
//! and answers) out of git: `stagegate init` adds it to the repository's `.gitignore`, once.

use std::io::Write as _;
use std::path::Path;

use crate::workspace::STATE_DIR;

/// What `ignore_state_dir` did.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Created,
    Appended,
    AlreadyIgnored,
    /// `.gitignore` is there but not a regular file (a symlink, say): left alone.
    NotRegular,
}

/// Makes the repository's `.gitignore` ignore `.stagegate/`: creates the file, or appends one
/// line to it, unless a line already ignores the directory.
pub fn ignore_state_dir(repo_root: &Path) -> std::io::Result<Outcome> {
    let path = repo_root.join(".gitignore");
    let existing = match std::fs::symlink_metadata(&path) {
        Ok(metadata) if !metadata.is_file() => return Ok(Outcome::NotRegular),
        Ok(_) => Some(std::fs::read(&path)?),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
        Err(error) => return Err(error),
    };
    let addition = match &existing {
        Some(content) => match addition(content) {
            Some(addition) => addition,
            None => return Ok(Outcome::AlreadyIgnored),
        },
        None => format!("{STATE_DIR}/\n"),
    };
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)?
        .write_all(addition.as_bytes())?;
    Ok(if existing.is_some() {
        Outcome::Appended
    } else {
        Outcome::Created
    })
}

/// The text to append to a `.gitignore` holding `content`, or `None` when a line of it already
/// ignores the state directory (`.stagegate`, `.stagegate/`, `/.stagegate`, `/.stagegate/`).
fn addition(content: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(content);
    let ignored = text.lines().any(|line| {
        let pattern = line.trim();
        let pattern = pattern.strip_prefix('/').unwrap_or(pattern);
        let pattern = pattern.strip_suffix('/').unwrap_or(pattern);
        pattern == STATE_DIR
    });
    if ignored {
        return None;
    }
    let separator = if content.is_empty() || content.ends_with(b"\n") {
        ""
    } else {
        "\n"
    };
    Some(format!("{separator}{STATE_DIR}/\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_added_after_the_last_one() {
        assert_eq!(addition(b"target/\n").as_deref(), Some(".stagegate/\n"));
        assert_eq!(addition(b"target/").as_deref(), Some("\n.stagegate/\n"));
        assert_eq!(addition(b"").as_deref(), Some(".stagegate/\n"));
    }

    #[test]
    fn every_spelling_of_the_directory_counts_as_ignored() {
        for line in [".stagegate", ".stagegate/", "/.stagegate", "/.stagegate/ "] {
            assert_eq!(addition(format!("target/\n{line}\n").as_bytes()), None);
        }
        assert!(addition(b"# .stagegate/\n.stagegate-other\n").is_some());
    }
}
