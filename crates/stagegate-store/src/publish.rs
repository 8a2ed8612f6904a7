//! Publishing approved artifacts into the person's feature directory.
//!
//! This is the only place stagegate writes into the feature directory, and it runs only after a
//! person approved the gate.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::atomic_write::{TEMPORARY_PREFIX, atomic_write};
use crate::content_hash::{content_hash, file_hash};
use crate::run_dir::validate_artifact_name;

/// Publishes staged artifacts into `feature_dir`, each through [`atomic_write`], and returns
/// `(name, content_hash)` per artifact, in the order given, for recording the approvals.
///
/// Every name is validated and every staged file read before the first write, so a bad name or
/// a missing staged file publishes nothing. A failure while writing (a full disk) can still leave
/// the artifacts before it published and the rest untouched: each file is atomic, the set is not;
/// publishing again is safe because it rewrites the same content.
///
/// `feature_dir` must exist: it is the person's `specs/NNN-name/`, never created here.
pub fn publish(
    staged: &[(String, PathBuf)],
    feature_dir: &Path,
) -> io::Result<Vec<(String, String)>> {
    for (name, _) in staged {
        validate_artifact_name(name)?;
    }
    let mut contents = Vec::with_capacity(staged.len());
    for (name, source) in staged {
        let content = fs::read(source).map_err(|error| {
            io::Error::new(
                error.kind(),
                format!(
                    "cannot read staged artifact {name} at {}: {error}",
                    source.display()
                ),
            )
        })?;
        contents.push((name, content));
    }
    let mut published = Vec::with_capacity(contents.len());
    for (name, content) in contents {
        let target = feature_dir.join(name);
        atomic_write(&target, &content).map_err(|error| {
            io::Error::new(
                error.kind(),
                format!("cannot publish {name} to {}: {error}", target.display()),
            )
        })?;
        published.push((name.clone(), content_hash(&content)));
    }
    Ok(published)
}

/// One artifact of an approved set, as [`publish_approved`] left it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedFile {
    pub name: String,
    pub content_hash: String,
    /// Whether a different file of that name was replaced (`false`: created, or already there).
    pub replaced: bool,
}

/// Publishes an approved set: each `(name, hash)` of `approved` from `staged_dir` into
/// `feature_dir`, through [`atomic_write`]. Idempotent, so that it can finish a publication a
/// crash cut short: a file that already holds the approved bytes is left alone.
///
/// Every staged file is checked against the hash the approval recorded before the first write;
/// a staged file that changed since is refused (nothing is published), since it is not what
/// the person approved.
///
/// A file that is replaced is first kept in `keep_dir` (under its own name; the first version
/// kept stays, so that finishing an interrupted publication never overwrites it with the
/// approved bytes): the person's work is never lost, and can be restored.
pub fn publish_approved(
    staged_dir: &Path,
    feature_dir: &Path,
    keep_dir: &Path,
    approved: &[(String, String)],
) -> io::Result<Vec<PublishedFile>> {
    let mut writes = Vec::with_capacity(approved.len());
    let mut published = Vec::with_capacity(approved.len());
    for (name, hash) in approved {
        validate_artifact_name(name)?;
        let target = feature_dir.join(name);
        // Hashed, not read: the file may be large, and a FIFO or device put there must not
        // block publishing (`file_hash` refuses anything but a regular file; the rename
        // below then replaces it).
        let current_hash = file_hash(&target).ok();
        if current_hash.as_deref() == Some(hash.as_str()) {
            published.push(PublishedFile {
                name: name.clone(),
                content_hash: hash.clone(),
                replaced: false,
            });
            continue;
        }
        let source = staged_dir.join(name);
        let content = fs::read(&source).map_err(|error| {
            io::Error::new(
                error.kind(),
                format!(
                    "cannot read staged artifact {name} at {}: {error}",
                    source.display()
                ),
            )
        })?;
        if content_hash(&content) != *hash {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "the staged {name} at {} changed after it was approved; nothing was published",
                    source.display()
                ),
            ));
        }
        // A regular file is replaced: keep it first (the first version kept stays).
        if current_hash.is_some() {
            let kept = keep_dir.join(name);
            if !kept.exists() {
                fs::create_dir_all(keep_dir)?;
                atomic_write(&kept, &fs::read(&target)?)?;
            }
        }
        published.push(PublishedFile {
            name: name.clone(),
            content_hash: hash.clone(),
            replaced: fs::symlink_metadata(&target).is_ok(),
        });
        writes.push((target, content));
    }
    for (target, content) in writes {
        atomic_write(&target, &content).map_err(|error| {
            io::Error::new(
                error.kind(),
                format!("cannot publish {}: {error}", target.display()),
            )
        })?;
    }
    Ok(published)
}

/// Removes the temporary files that a killed stagegate left in `directory` (those of processes
/// that `is_alive` says are gone; a live process may be about to rename its own). Returns how
/// many were removed.
pub fn remove_stale_temporaries(
    directory: &Path,
    is_alive: impl Fn(u32) -> bool,
) -> io::Result<usize> {
    let entries = match fs::read_dir(directory) {
        Ok(entries) => entries,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(error) => return Err(error),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let Some(rest) = name
            .to_str()
            .and_then(|name| name.strip_prefix(TEMPORARY_PREFIX))
        else {
            continue;
        };
        let owner = rest
            .split('-')
            .next()
            .and_then(|pid| pid.parse::<u32>().ok());
        if owner.is_some_and(&is_alive) || !entry.file_type()?.is_file() {
            continue;
        }
        fs::remove_file(entry.path())?;
        removed += 1;
    }
    Ok(removed)
}

#[cfg(test)]
#[expect(
    clippy::unwrap_used,
    reason = "a failing test should stop at the failing line"
)]
mod tests {
    use super::*;
    use crate::content_hash::file_hash;
    use crate::run_dir::RunDir;

    #[test]
    fn publishes_every_artifact_with_its_hash() {
        let directory = tempfile::tempdir().unwrap();
        let run_dir = RunDir::new(directory.path().join("runs/run-1"));
        let feature_dir = directory.path().join("specs/001-feature");
        fs::create_dir_all(&feature_dir).unwrap();
        fs::write(feature_dir.join("plan.md"), b"old plan").unwrap();
        run_dir
            .stage_artifact("plan", "plan.md", b"new plan")
            .unwrap();
        run_dir
            .stage_artifact("plan", "planning-summary.md", b"summary")
            .unwrap();

        let published = publish(&run_dir.staged_artifacts("plan").unwrap(), &feature_dir).unwrap();

        assert_eq!(
            published,
            vec![
                ("plan.md".to_owned(), content_hash(b"new plan")),
                ("planning-summary.md".to_owned(), content_hash(b"summary")),
            ]
        );
        assert_eq!(fs::read(feature_dir.join("plan.md")).unwrap(), b"new plan");
        assert_eq!(
            file_hash(&feature_dir.join("planning-summary.md")).unwrap(),
            published[1].1
        );
        assert_eq!(fs::read_dir(&feature_dir).unwrap().count(), 2);
    }

    #[test]
    fn a_bad_name_publishes_nothing() {
        let directory = tempfile::tempdir().unwrap();
        let feature_dir = directory.path().join("specs/001-feature");
        fs::create_dir_all(&feature_dir).unwrap();
        let source = directory.path().join("source.md");
        fs::write(&source, b"content").unwrap();
        let staged = vec![
            ("plan.md".to_owned(), source.clone()),
            ("../x".to_owned(), source),
        ];

        let error = publish(&staged, &feature_dir).unwrap_err();

        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(fs::read_dir(&feature_dir).unwrap().count(), 0);
        assert!(!directory.path().join("specs/x").exists());
    }

    #[test]
    fn a_missing_staged_file_publishes_nothing() {
        let directory = tempfile::tempdir().unwrap();
        let feature_dir = directory.path().join("feature");
        fs::create_dir_all(&feature_dir).unwrap();
        let present = directory.path().join("present.md");
        fs::write(&present, b"content").unwrap();
        let staged = vec![
            ("plan.md".to_owned(), present),
            ("summary.md".to_owned(), directory.path().join("absent.md")),
        ];
        assert_eq!(
            publish(&staged, &feature_dir).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        assert_eq!(fs::read_dir(&feature_dir).unwrap().count(), 0);
    }
}
