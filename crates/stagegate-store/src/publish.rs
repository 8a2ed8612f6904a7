//! Publishing approved artifacts into the person's feature directory.
//!
//! This is the only place stagegate writes into the feature directory, and it runs only after a
//! person approved the gate.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::atomic_write::atomic_write;
use crate::content_hash::content_hash;
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
