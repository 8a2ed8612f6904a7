//! The layout of `.stagegate/runs/<run-id>/`, kept in one place so that nothing else in stagegate
//! spells these file names.
//!
//! ```text
//! runs/<run-id>/<stage>/staged/<artifact>            the round the gate shows now
//! runs/<run-id>/<stage>/staged.next/<artifact>       a modification being prepared
//! runs/<run-id>/<stage>/staged.round-<n>/<artifact>  earlier rounds, kept
//! runs/<run-id>/<stage>/replaced/<artifact>          feature files the approval replaced
//! ```
//!
//! A modification never writes into `staged/`: it prepares the whole next round beside it and
//! switches with two renames made under the decision's lock, so a crash leaves the gate with the
//! round it had or the round it recorded, never a mixture ([`RunDir::repair_rounds`]).
//!
//! Attempts' prompts, outputs and stderr are not here: they are rows of the database
//! (`Store::attempt_text`, shown by `stagegate show`). Everything here is kept after the run;
//! files are written with [`atomic_write`] so that a crash never leaves a half-written artifact.

use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

use crate::atomic_write::atomic_write;

const STAGED_DIRECTORY: &str = "staged";
const NEXT_ROUND_DIRECTORY: &str = "staged.next";
const REPLACED_DIRECTORY: &str = "replaced";

/// One run's directory under `.stagegate/runs/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDir {
    path: PathBuf,
}

impl RunDir {
    pub(crate) fn new(path: PathBuf) -> RunDir {
        RunDir { path }
    }

    /// `runs/<run-id>`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `runs/<run-id>/<stage>`.
    pub fn stage_dir(&self, stage: &str) -> PathBuf {
        self.path.join(stage)
    }

    /// `runs/<run-id>/<stage>/staged`: artifacts waiting for the gate.
    pub fn staged_dir(&self, stage: &str) -> PathBuf {
        self.stage_dir(stage).join(STAGED_DIRECTORY)
    }

    /// Stages an artifact: writes `content` to `staged/<name>` atomically, creating the directory,
    /// and returns the path. `name` must be a plain file name (`plan.md`); anything that could
    /// point elsewhere (`..`, `/`, a leading `.`) is refused before anything is written.
    pub fn stage_artifact(&self, stage: &str, name: &str, content: &[u8]) -> io::Result<PathBuf> {
        validate_component("stage", stage)?;
        validate_artifact_name(name)?;
        let directory = self.staged_dir(stage);
        fs::create_dir_all(&directory)?;
        let path = directory.join(name);
        atomic_write(&path, content)?;
        Ok(path)
    }

    /// The staged artifacts of `stage` as `(name, path)`, sorted by name; empty when nothing was
    /// staged. Hidden files (temporary files a crash left behind) are not artifacts.
    pub fn staged_artifacts(&self, stage: &str) -> io::Result<Vec<(String, PathBuf)>> {
        validate_component("stage", stage)?;
        artifacts_in(&self.staged_dir(stage))
    }

    /// `runs/<run-id>/<stage>/replaced`: the feature's files that this stage's approval
    /// replaced, as they were before (`stagegate restore` puts them back).
    pub fn replaced_dir(&self, stage: &str) -> PathBuf {
        self.stage_dir(stage).join(REPLACED_DIRECTORY)
    }

    /// `runs/<run-id>/<stage>/staged.next`: the next round while it is being prepared.
    pub fn next_round_dir(&self, stage: &str) -> PathBuf {
        self.stage_dir(stage).join(NEXT_ROUND_DIRECTORY)
    }

    /// `runs/<run-id>/<stage>/staged.round-<round>`: an earlier round, kept once replaced.
    pub fn round_dir(&self, stage: &str, round: u32) -> PathBuf {
        self.stage_dir(stage)
            .join(format!("{STAGED_DIRECTORY}.round-{round}"))
    }

    /// Starts preparing the next round: `staged.next/` as a fresh copy of `staged/` (whatever an
    /// earlier, unfinished preparation left there is discarded). Returns the copies as
    /// `(name, path)`, to be edited or overwritten.
    pub fn begin_next_round(&self, stage: &str) -> io::Result<Vec<(String, PathBuf)>> {
        validate_component("stage", stage)?;
        let next = self.next_round_dir(stage);
        remove_dir_if_present(&next)?;
        fs::create_dir_all(&next)?;
        for (name, path) in self.staged_artifacts(stage)? {
            atomic_write(&next.join(&name), &fs::read(path)?)?;
        }
        artifacts_in(&next)
    }

    /// Writes an artifact of the round being prepared.
    pub fn stage_next_artifact(
        &self,
        stage: &str,
        name: &str,
        content: &[u8],
    ) -> io::Result<PathBuf> {
        validate_component("stage", stage)?;
        validate_artifact_name(name)?;
        let directory = self.next_round_dir(stage);
        fs::create_dir_all(&directory)?;
        let path = directory.join(name);
        atomic_write(&path, content)?;
        Ok(path)
    }

    /// The artifacts of the round being prepared, as `(name, path)`.
    pub fn next_round_artifacts(&self, stage: &str) -> io::Result<Vec<(String, PathBuf)>> {
        validate_component("stage", stage)?;
        artifacts_in(&self.next_round_dir(stage))
    }

    /// Makes the prepared round current: `staged/` becomes `staged.round-<current>` and
    /// `staged.next/` becomes `staged/`. Call it under the decision's lock, before the decision
    /// that records round `current + 1` commits; [`RunDir::repair_rounds`] undoes it if that
    /// commit never happens.
    pub fn promote_next_round(&self, stage: &str, current: u32) -> io::Result<()> {
        validate_component("stage", stage)?;
        let next = self.next_round_dir(stage);
        if !next.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("no round is being prepared in {}", next.display()),
            ));
        }
        let previous = self.round_dir(stage, current);
        remove_dir_if_present(&previous)?;
        fs::rename(self.staged_dir(stage), &previous)?;
        fs::rename(&next, self.staged_dir(stage))?;
        sync_dir(&self.stage_dir(stage))
    }

    /// Brings the staged artifacts back in line with the round the database recorded
    /// (`committed`), after a crash between [`RunDir::promote_next_round`] and the decision's
    /// commit: the round that was never recorded is discarded and round `committed` is put back.
    /// Returns whether anything was repaired. Call it under the decision lock.
    pub fn repair_rounds(&self, stage: &str, committed: u32) -> io::Result<bool> {
        validate_component("stage", stage)?;
        let kept = self.round_dir(stage, committed);
        if !kept.is_dir() {
            return Ok(false);
        }
        let staged = self.staged_dir(stage);
        remove_dir_if_present(&staged)?;
        fs::rename(&kept, &staged)?;
        sync_dir(&self.stage_dir(stage))?;
        Ok(true)
    }

    /// The content of the staged artifact `name` of `stage`.
    pub fn read_staged(&self, stage: &str, name: &str) -> io::Result<Vec<u8>> {
        validate_component("stage", stage)?;
        validate_artifact_name(name)?;
        fs::read(self.staged_dir(stage).join(name))
    }
}

/// The artifacts in `directory` as `(name, path)`, sorted; hidden files are left out.
fn artifacts_in(directory: &Path) -> io::Result<Vec<(String, PathBuf)>> {
    let entries = match fs::read_dir(directory) {
        Ok(entries) => entries,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(error),
    };
    let mut artifacts = Vec::new();
    for entry in entries {
        let entry = entry?;
        if !entry.file_type()?.is_file() {
            continue;
        }
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if name.starts_with('.') {
            continue;
        }
        artifacts.push((name, entry.path()));
    }
    artifacts.sort();
    Ok(artifacts)
}

fn remove_dir_if_present(directory: &Path) -> io::Result<()> {
    match fs::remove_dir_all(directory) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
        _ => Ok(()),
    }
}

/// Makes renames in `directory` durable.
fn sync_dir(directory: &Path) -> io::Result<()> {
    fs::File::open(directory)?.sync_all()
}

/// Accepts only a plain file name: one normal path component, no separators, not hidden.
///
/// Artifact names come from configuration and from agents' output; a name like `../../.bashrc`
/// must never turn into a write outside the staged or feature directory.
pub(crate) fn validate_artifact_name(name: &str) -> io::Result<()> {
    validate_component("artifact name", name)
}

fn validate_component(what: &str, value: &str) -> io::Result<()> {
    let mut components = Path::new(value).components();
    let plain = matches!(components.next(), Some(Component::Normal(_)))
        && components.next().is_none()
        && !value.starts_with('.')
        && !value.contains(['/', '\\', '\0']);
    if plain {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "invalid {what} {value:?}: expected a plain file name such as `plan.md`, without `/`, `..` or a leading `.`"
            ),
        ))
    }
}

#[cfg(test)]
#[expect(
    clippy::unwrap_used,
    reason = "a failing test should stop at the failing line"
)]
mod tests {
    use super::*;

    fn run_dir() -> (tempfile::TempDir, RunDir) {
        let directory = tempfile::tempdir().unwrap();
        let run_dir = RunDir::new(directory.path().join("runs").join("run-1"));
        (directory, run_dir)
    }

    #[test]
    fn layout() {
        let (_directory, run_dir) = run_dir();
        assert_eq!(run_dir.stage_dir("plan"), run_dir.path().join("plan"));
        assert_eq!(
            run_dir.staged_dir("plan"),
            run_dir.path().join("plan/staged")
        );
    }

    #[test]
    fn staged_artifacts_round_trip_sorted() {
        let (_directory, run_dir) = run_dir();
        assert!(run_dir.staged_artifacts("plan").unwrap().is_empty());
        let plan = run_dir
            .stage_artifact("plan", "plan.md", b"# Plan")
            .unwrap();
        run_dir
            .stage_artifact("plan", "planning-summary.md", b"# Summary")
            .unwrap();
        run_dir
            .stage_artifact("plan", "data-model.md", b"# Model")
            .unwrap();
        fs::write(
            run_dir.staged_dir("plan").join(".stagegate-tmp-1-0-x"),
            b"debris",
        )
        .unwrap();

        let names: Vec<String> = run_dir
            .staged_artifacts("plan")
            .unwrap()
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        assert_eq!(names, ["data-model.md", "plan.md", "planning-summary.md"]);
        assert_eq!(plan, run_dir.staged_dir("plan").join("plan.md"));
        assert_eq!(run_dir.read_staged("plan", "plan.md").unwrap(), b"# Plan");

        run_dir
            .stage_artifact("plan", "plan.md", b"# Plan v2")
            .unwrap();
        assert_eq!(
            run_dir.read_staged("plan", "plan.md").unwrap(),
            b"# Plan v2"
        );
    }

    /// Every file under `directory` as (relative path, bytes), sorted.
    fn tree(directory: &Path) -> Vec<(String, Vec<u8>)> {
        let mut files = Vec::new();
        let mut pending = vec![directory.to_path_buf()];
        while let Some(current) = pending.pop() {
            for entry in fs::read_dir(&current).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    pending.push(path);
                } else {
                    let relative = path.strip_prefix(directory).unwrap();
                    files.push((relative.display().to_string(), fs::read(&path).unwrap()));
                }
            }
        }
        files.sort();
        files
    }

    /// Round 1 staged (`plan.md`, `planning-summary.md`), round 2 prepared in `staged.next/`
    /// (`plan.md` rewritten, `research.md` added, `planning-summary.md` removed).
    fn two_rounds() -> (tempfile::TempDir, RunDir, Vec<(String, Vec<u8>)>) {
        let (directory, run_dir) = run_dir();
        run_dir
            .stage_artifact("plan", "plan.md", b"# Plan, round 1")
            .unwrap();
        run_dir
            .stage_artifact("plan", "planning-summary.md", b"# Summary, round 1")
            .unwrap();
        let round_1 = tree(&run_dir.staged_dir("plan"));
        let copies = run_dir.begin_next_round("plan").unwrap();
        assert_eq!(copies.len(), 2);
        run_dir
            .stage_next_artifact("plan", "plan.md", b"# Plan, round 2")
            .unwrap();
        run_dir
            .stage_next_artifact("plan", "research.md", b"# Research, round 2")
            .unwrap();
        fs::remove_file(run_dir.next_round_dir("plan").join("planning-summary.md")).unwrap();
        (directory, run_dir, round_1)
    }

    /// A crash after the switch to round 2 but before the decision recording round 2 commits:
    /// the next command repairs with the recorded round (1) and gets exactly round 1 back.
    #[test]
    fn repair_after_a_switch_that_was_never_recorded_restores_the_recorded_round() {
        let (_directory, run_dir, round_1) = two_rounds();
        run_dir.promote_next_round("plan", 1).unwrap();
        assert_eq!(
            tree(&run_dir.staged_dir("plan")),
            [
                ("plan.md".to_owned(), b"# Plan, round 2".to_vec()),
                ("research.md".to_owned(), b"# Research, round 2".to_vec()),
            ]
        );

        assert!(run_dir.repair_rounds("plan", 1).unwrap());
        assert_eq!(tree(&run_dir.staged_dir("plan")), round_1);
        assert!(!run_dir.round_dir("plan", 1).exists());
        assert!(!run_dir.next_round_dir("plan").exists());
        // Repairing again changes nothing.
        assert!(!run_dir.repair_rounds("plan", 1).unwrap());
        assert_eq!(tree(&run_dir.staged_dir("plan")), round_1);
        // A later modification starts again from round 1.
        let copies = run_dir.begin_next_round("plan").unwrap();
        let names: Vec<&str> = copies.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(names, ["plan.md", "planning-summary.md"]);
    }

    /// A crash between the two renames of the switch (`staged/` already kept as round 1,
    /// `staged.next/` not yet renamed): the repair restores round 1.
    #[test]
    fn repair_after_half_a_switch_restores_the_recorded_round() {
        let (_directory, run_dir, round_1) = two_rounds();
        fs::rename(run_dir.staged_dir("plan"), run_dir.round_dir("plan", 1)).unwrap();
        assert!(!run_dir.staged_dir("plan").exists());

        assert!(run_dir.repair_rounds("plan", 1).unwrap());
        assert_eq!(tree(&run_dir.staged_dir("plan")), round_1);
    }

    /// The decision recording round 2 committed: repairing with round 2 changes nothing, and
    /// round 1 stays kept beside it.
    #[test]
    fn repair_after_a_recorded_switch_changes_nothing() {
        let (_directory, run_dir, round_1) = two_rounds();
        run_dir.promote_next_round("plan", 1).unwrap();
        let stage_before = tree(&run_dir.stage_dir("plan"));

        assert!(!run_dir.repair_rounds("plan", 2).unwrap());
        assert_eq!(tree(&run_dir.stage_dir("plan")), stage_before);
        assert_eq!(tree(&run_dir.round_dir("plan", 1)), round_1);
    }

    /// A crash before the switch (while the next round was being prepared): the staged round is
    /// untouched, and the repair has nothing to do.
    #[test]
    fn repair_before_the_switch_changes_nothing() {
        let (_directory, run_dir, round_1) = two_rounds();
        assert!(!run_dir.repair_rounds("plan", 1).unwrap());
        assert_eq!(tree(&run_dir.staged_dir("plan")), round_1);
    }

    #[test]
    fn stage_artifact_refuses_anything_but_a_plain_file_name() {
        let (directory, run_dir) = run_dir();
        for name in [
            "../x",
            "..",
            ".",
            "",
            "a/b",
            "/etc/passwd",
            "a\\b",
            ".hidden",
            "contracts/",
        ] {
            assert_eq!(
                run_dir
                    .stage_artifact("plan", name, b"x")
                    .unwrap_err()
                    .kind(),
                io::ErrorKind::InvalidInput,
                "{name:?}"
            );
        }
        assert!(!run_dir.path().exists());
        assert!(!directory.path().join("x").exists());
    }
}
