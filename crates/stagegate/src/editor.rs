//! `modify` in $EDITOR: the person edits the staged artifacts in place; the change is recorded
//! as a diff. The editor runs in the terminal's foreground process group (it is our child in
//! our own group) and is never started through a shell.

use std::path::PathBuf;
use std::process::Command;

use crate::error::AppError;
use crate::gate_decision::artifact_diff;

/// Opens `$VISUAL` / `$EDITOR` (else `vi`) on `files` and returns the unified diff of what
/// changed (empty when nothing did).
pub fn edit_files(files: &[(String, PathBuf)]) -> Result<String, AppError> {
    let before: Vec<String> = files
        .iter()
        .map(|(_, path)| std::fs::read_to_string(path))
        .collect::<Result<_, _>>()?;
    let editor = std::env::var("VISUAL")
        .or_else(|_| std::env::var("EDITOR"))
        .unwrap_or_else(|_| "vi".to_owned());
    let mut words = editor.split_whitespace();
    let program = words.next().ok_or_else(|| {
        AppError::usage("$EDITOR is empty\nhint: export EDITOR=vi (or your editor)")
    })?;
    let status = Command::new(program)
        .args(words)
        .args(files.iter().map(|(_, path)| path))
        .status()
        .map_err(|error| {
            AppError::usage(format!(
                "cannot start the editor `{program}`: {error}\nhint: set $EDITOR to an installed editor, or use --feedback"
            ))
        })?;
    if !status.success() {
        return Err(AppError::usage(format!(
            "the editor `{program}` exited with {status}; nothing was recorded"
        )));
    }
    let mut diff = String::new();
    for ((name, path), before) in files.iter().zip(before) {
        let after = std::fs::read_to_string(path)?;
        diff.push_str(&artifact_diff(name, &before, &after));
    }
    Ok(diff)
}
