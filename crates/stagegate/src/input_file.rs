//! Reading a feature's input files (`spec.md`, `plan.md`, `tasks.md`, …) safely.
//!
//! An input goes into every prompt of its stage, so what is read must be what the user meant:
//!
//! * a regular file only: a FIFO blocks the read forever, a device such as `/dev/zero` never
//!   ends, and a directory is not text;
//! * at most [`MAX_INPUT_BYTES`]: every prompt, cache key and run directory holds a copy of the
//!   inputs, so a 50 MB spec cost minutes, gigabytes of memory and hundreds of megabytes of run
//!   files, and no model's context holds it anyway;
//! * inside the repository once symlinks are resolved: a `spec.md` linking to `/etc/passwd` or
//!   `~/.ssh/id_ed25519` would send that file to a third-party model. This is refused outright
//!   rather than made settable: copying the file into the repository says the same thing
//!   explicitly, and keeps the approval hashes about files the repository holds.
//!
//! The checks look before opening (a FIFO cannot be opened without blocking) and the read is
//! bounded again, so a file swapped or grown in between still cannot exceed the limit.

use std::io::Read;
use std::path::{Path, PathBuf};

/// The largest input file read: 10 MiB, hundreds of times a real spec. Not settable: a larger
/// input is a mistake (a log, a generated dump), and no model's context window could take it.
pub const MAX_INPUT_BYTES: u64 = 10 * 1024 * 1024;

/// Why an input could not be read.
#[derive(Debug)]
pub enum InputProblem {
    Missing,
    NotAFile { found: &'static str },
    TooLarge { size: u64 },
    OutsideRepository { resolved: PathBuf },
    Io(std::io::Error),
}

impl InputProblem {
    /// One problem line for the stage's exit-5 message, naming `shown` (the path as the user
    /// knows it) and saying how to fix it.
    pub fn describe(&self, shown: &str) -> String {
        match self {
            InputProblem::Missing => format!("- {shown} does not exist"),
            InputProblem::NotAFile { found } => format!(
                "- {shown} is {found}, not a regular file\n  hint: replace it with a regular file holding the text"
            ),
            InputProblem::TooLarge { size } => format!(
                "- {shown} is too large: {size} bytes, more than the limit of {MAX_INPUT_BYTES} bytes (10 MiB)\n  hint: an input goes into every prompt of the stage; shorten it, or move long material (logs, data) out of the feature directory and summarise it"
            ),
            InputProblem::OutsideRepository { resolved } => format!(
                "- {shown} resolves to {}, outside the repository\n  hint: inputs are sent to the agents, so a symlink out of the repository is refused; copy the file into the feature directory instead",
                resolved.display()
            ),
            InputProblem::Io(error) => format!("- {shown} cannot be read: {error}"),
        }
    }
}

/// Checks `path` against the rules above without reading it.
pub fn check_input(repo_root: &Path, path: &Path) -> Result<(), InputProblem> {
    let resolved = match path.canonicalize() {
        Ok(resolved) => resolved,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Err(InputProblem::Missing);
        }
        Err(error) => return Err(InputProblem::Io(error)),
    };
    let root = repo_root
        .canonicalize()
        .unwrap_or_else(|_| repo_root.to_path_buf());
    if !resolved.starts_with(&root) {
        return Err(InputProblem::OutsideRepository { resolved });
    }
    let metadata = std::fs::metadata(&resolved).map_err(InputProblem::Io)?;
    if !metadata.is_file() {
        return Err(InputProblem::NotAFile {
            found: stagegate_settings::file_type_name(&metadata.file_type()),
        });
    }
    if metadata.len() > MAX_INPUT_BYTES {
        return Err(InputProblem::TooLarge {
            size: metadata.len(),
        });
    }
    Ok(())
}

/// Reads an input after [`check_input`], at most [`MAX_INPUT_BYTES`].
pub fn read_input(repo_root: &Path, path: &Path) -> Result<Vec<u8>, InputProblem> {
    check_input(repo_root, path)?;
    let file = std::fs::File::open(path).map_err(InputProblem::Io)?;
    let mut bytes = Vec::new();
    file.take(MAX_INPUT_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(InputProblem::Io)?;
    if bytes.len() as u64 > MAX_INPUT_BYTES {
        return Err(InputProblem::TooLarge {
            size: bytes.len() as u64,
        });
    }
    Ok(bytes)
}

/// Optional context (spec-kit's constitution and templates): its text when it is an input the
/// rules above accept, else nothing, so a FIFO or a link out of the repository is skipped
/// rather than read.
pub fn read_context(repo_root: &Path, relative: &Path) -> Option<String> {
    let bytes = read_input(repo_root, &repo_root.join(relative)).ok()?;
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_directories_large_files_and_links_out_of_the_repository() {
        let outside = tempfile::tempdir().expect("tempdir");
        let root = tempfile::tempdir().expect("tempdir");
        let secret = outside.path().join("secret");
        std::fs::write(&secret, "secret").expect("write");
        std::fs::write(root.path().join("spec.md"), "# Spec").expect("write");
        std::os::unix::fs::symlink(&secret, root.path().join("linked.md")).expect("symlink");
        std::os::unix::fs::symlink("spec.md", root.path().join("inside.md")).expect("symlink");
        std::fs::create_dir(root.path().join("dir.md")).expect("mkdir");
        let large = std::fs::File::create(root.path().join("large.md")).expect("create");
        large.set_len(MAX_INPUT_BYTES + 1).expect("grow");

        let read = |name: &str| read_input(root.path(), &root.path().join(name));
        assert_eq!(read("spec.md").expect("read"), b"# Spec");
        assert_eq!(read("inside.md").expect("read"), b"# Spec");
        assert!(matches!(read("missing.md"), Err(InputProblem::Missing)));
        assert!(matches!(
            read("linked.md"),
            Err(InputProblem::OutsideRepository { .. })
        ));
        assert!(matches!(
            read("dir.md"),
            Err(InputProblem::NotAFile {
                found: "a directory"
            })
        ));
        assert!(matches!(
            read("large.md"),
            Err(InputProblem::TooLarge { .. })
        ));
    }
}
