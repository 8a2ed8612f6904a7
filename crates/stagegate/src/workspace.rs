//! Where things are: the repository root (where `.stagegate/` and `stagegate.toml` live) and
//! the feature directory, found the way spec-kit finds it.

use std::path::{Path, PathBuf};

use crate::error::AppError;
use crate::input_file::read_context;

/// The directory holding the state database and run directories, under the repository root.
pub const STATE_DIR: &str = ".stagegate";

/// The repository root: the nearest ancestor of `start` holding `.git`, `.specify` or
/// `stagegate.toml`; `start` itself when none does.
pub fn find_repo_root(start: &Path) -> PathBuf {
    start
        .ancestors()
        .find(|dir| {
            dir.join(".git").exists()
                || dir.join(".specify").is_dir()
                || dir.join("stagegate.toml").is_file()
        })
        .unwrap_or(start)
        .to_path_buf()
}

/// A feature directory, with its path relative to the repository root (the key approvals are
/// recorded under, so that they survive moving the repository).
#[derive(Debug, Clone)]
pub struct Feature {
    pub dir: PathBuf,
    pub key: String,
}

impl Feature {
    /// The repository root the feature lives under: `dir` without the components of `key`
    /// (a feature directory is always inside its repository, see [`find_feature`]).
    pub fn repo_root(&self) -> PathBuf {
        let depth = Path::new(&self.key).components().count();
        self.dir
            .ancestors()
            .nth(depth)
            .unwrap_or(&self.dir)
            .to_path_buf()
    }
}

/// Finds the feature directory: `--feature DIR`, else `SPECIFY_FEATURE_DIRECTORY`, else
/// `.specify/feature.json`, else the directory named by the current git branch, else the only
/// (or newest-numbered) one under `specs/`.
pub fn find_feature(
    repo_root: &Path,
    cwd: &Path,
    explicit: Option<&Path>,
    environment: Option<&str>,
) -> Result<Feature, AppError> {
    if let Some(dir) = explicit {
        return existing(repo_root, &cwd.join(dir), "--feature");
    }
    if let Some(dir) = environment.filter(|value| !value.trim().is_empty()) {
        return existing(repo_root, &repo_root.join(dir), "SPECIFY_FEATURE_DIRECTORY");
    }
    if let Some(dir) = from_feature_json(repo_root) {
        return existing(repo_root, &repo_root.join(dir), ".specify/feature.json");
    }
    let specs = repo_root.join("specs");
    let candidates = feature_dirs(&specs);
    if let Some(branch) = current_branch(repo_root)
        && let Some(dir) = match_branch(&candidates, &branch)
    {
        return existing(repo_root, &dir, "the current git branch");
    }
    match candidates.last() {
        Some(dir) => existing(repo_root, dir, "specs/"),
        None => Err(AppError::usage(format!(
            "no feature directory found under {}\nhint: create one with spec-kit (`/speckit.specify`), or pass --feature specs/NNN-name",
            specs.display()
        ))),
    }
}

fn existing(repo_root: &Path, dir: &Path, from: &str) -> Result<Feature, AppError> {
    if !dir.is_dir() {
        return Err(AppError::usage(format!(
            "feature directory {} (from {from}) does not exist\nhint: pass --feature specs/NNN-name with an existing directory",
            dir.display()
        )));
    }
    let dir = dir.canonicalize()?;
    let root = repo_root
        .canonicalize()
        .unwrap_or_else(|_| repo_root.to_path_buf());
    // Approvals are keyed by the path under the root, the inputs are read from it and approved
    // artifacts are published into it: a directory elsewhere (`--feature /tmp/x`, a symlink out
    // of `specs/`) would let a run write outside the repository it was started in.
    let Ok(relative) = dir.strip_prefix(&root) else {
        return Err(AppError::usage(format!(
            "feature directory {} (from {from}) is outside the repository {}\nhint: stagegate reads and publishes only inside the repository; run it from the repository that holds the feature, or move the feature under specs/",
            dir.display(),
            root.display()
        )));
    };
    let key = relative.to_string_lossy().into_owned();
    Ok(Feature { dir, key })
}

/// `.specify/feature.json`'s directory (`feature_directory`, or a few spellings of it).
fn from_feature_json(repo_root: &Path) -> Option<String> {
    let text = read_context(repo_root, Path::new(".specify/feature.json"))?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    [
        "feature_directory",
        "featureDirectory",
        "feature_dir",
        "directory",
        "path",
    ]
    .iter()
    .find_map(|key| json.get(key)?.as_str().map(str::to_owned))
}

/// Directories under `specs/`, sorted by name (spec-kit's `NNN-` prefixes make that their age).
fn feature_dirs(specs: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(specs) else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.is_dir())
        .collect();
    dirs.sort();
    dirs
}

/// The branch `.git/HEAD` points at.
fn current_branch(repo_root: &Path) -> Option<String> {
    let head = read_context(repo_root, Path::new(".git/HEAD"))?;
    head.trim()
        .strip_prefix("ref: refs/heads/")
        .map(str::to_owned)
}

/// The feature directory a branch names: the same name, else the same `NNN` prefix.
fn match_branch(candidates: &[PathBuf], branch: &str) -> Option<PathBuf> {
    let name_of = |dir: &PathBuf| {
        dir.file_name()
            .map(|name| name.to_string_lossy().into_owned())
    };
    if let Some(exact) = candidates
        .iter()
        .find(|dir| name_of(dir).as_deref() == Some(branch))
    {
        return Some(exact.clone());
    }
    let prefix: String = branch.chars().take_while(char::is_ascii_digit).collect();
    if prefix.is_empty() {
        return None;
    }
    candidates
        .iter()
        .find(|dir| {
            name_of(dir).is_some_and(|name| {
                name.starts_with(&prefix) && name[prefix.len()..].starts_with('-')
            })
        })
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo() -> tempfile::TempDir {
        let root = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(root.path().join(".git")).expect("git");
        for name in ["001-first", "002-second"] {
            std::fs::create_dir_all(root.path().join("specs").join(name)).expect("mkdir");
        }
        root
    }

    #[test]
    fn explicit_beats_environment_beats_branch_beats_newest() {
        let root = repo();
        let path = root.path();
        let found = |explicit: Option<&Path>, environment: Option<&str>| {
            find_feature(path, path, explicit, environment)
                .expect("found")
                .key
        };
        assert_eq!(found(None, None), "specs/002-second");
        std::fs::write(path.join(".git/HEAD"), "ref: refs/heads/001-other-name\n").expect("head");
        assert_eq!(found(None, None), "specs/001-first");
        assert_eq!(found(None, Some("specs/002-second")), "specs/002-second");
        assert_eq!(
            found(Some(Path::new("specs/002-second")), Some("specs/001-first")),
            "specs/002-second"
        );
    }

    #[test]
    fn feature_json_names_the_directory() {
        let root = repo();
        std::fs::create_dir_all(root.path().join(".specify")).expect("mkdir");
        std::fs::write(
            root.path().join(".specify/feature.json"),
            r#"{"feature_directory": "specs/001-first"}"#,
        )
        .expect("write");
        let feature = find_feature(root.path(), root.path(), None, None).expect("found");
        assert_eq!(feature.key, "specs/001-first");
    }

    #[test]
    fn a_missing_directory_is_a_usage_error_that_says_how_to_fix_it() {
        let root = tempfile::tempdir().expect("tempdir");
        let error = find_feature(root.path(), root.path(), None, None).expect_err("none");
        assert!(error.to_string().contains("--feature"), "{error}");
        let error = find_feature(
            root.path(),
            root.path(),
            Some(Path::new("specs/nope")),
            None,
        )
        .expect_err("missing");
        assert!(error.to_string().contains("specs/nope"), "{error}");
    }
}
