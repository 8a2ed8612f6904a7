//! Whole-file replacement that a reader can never observe half-done.
//!
//! Every write into the person's feature directory, and every file the store keeps under
//! `.stagegate/runs/`, goes through [`atomic_write`]: the bytes go to a temporary file in the same
//! directory (so the rename cannot cross file systems), are flushed to disk, and only then replace
//! the target with one `rename`. A crash or a full disk leaves either the old file or the new one,
//! never a mixture.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Temporary files start with this prefix, so that listings (for example of staged artifacts)
/// can skip what a crash left behind.
pub(crate) const TEMPORARY_PREFIX: &str = ".stagegate-tmp-";

/// Distinguishes temporary files of concurrent writers within this process; the process id
/// distinguishes processes.
static TEMPORARY_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes a temporary file in the same directory, fsyncs it, renames it over `path`, fsyncs the
/// directory. A reader never sees half a file; on any error the temporary file is removed and
/// `path` is untouched.
///
/// When `path` already exists its permissions are kept, because the file may be one the person
/// made executable or read-only on purpose. The parent directory must exist.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let file_name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} does not name a file", path.display()),
        )
    })?;
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };

    let (temporary_path, file) = create_temporary(directory, &file_name.to_string_lossy())?;
    let result = write_and_rename(&temporary_path, file, path, bytes);
    if result.is_err() {
        // The rename is the last fallible step but one, so on error the temporary file is still
        // there (or was never renamed); removing it is best effort, the original error matters.
        let _ = fs::remove_file(&temporary_path);
        return result;
    }
    sync_directory(directory)
}

fn create_temporary(directory: &Path, file_name: &str) -> io::Result<(PathBuf, File)> {
    loop {
        let counter = TEMPORARY_COUNTER.fetch_add(1, Ordering::Relaxed);
        let candidate = directory.join(format!(
            "{TEMPORARY_PREFIX}{}-{counter}-{file_name}",
            std::process::id()
        ));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&candidate)
        {
            Ok(file) => return Ok((candidate, file)),
            // Left behind by an earlier process that had the same id: try the next name.
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(error) => return Err(error),
        }
    }
}

fn write_and_rename(
    temporary_path: &Path,
    mut file: File,
    path: &Path,
    bytes: &[u8],
) -> io::Result<()> {
    file.write_all(bytes)?;
    if let Ok(metadata) = fs::metadata(path) {
        file.set_permissions(metadata.permissions())?;
    }
    file.sync_all()?;
    drop(file);
    fs::rename(temporary_path, path)
}

/// Makes the rename itself durable: without this a power cut can bring back the old directory
/// entry even though the new file's data reached the disk.
fn sync_directory(directory: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(directory)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        // Directories cannot be opened as files elsewhere; the rename is as durable as the
        // platform makes it.
        let _ = directory;
        Ok(())
    }
}

#[cfg(test)]
#[expect(
    clippy::unwrap_used,
    reason = "a failing test should stop at the failing line"
)]
mod tests {
    use super::*;

    fn entries(directory: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(directory)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn creates_and_replaces_without_leaving_temporary_files() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("plan.md");
        atomic_write(&path, b"first").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"first");
        atomic_write(&path, b"second, longer content").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second, longer content");
        atomic_write(&path, b"").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"");
        assert_eq!(entries(directory.path()), vec!["plan.md"]);
    }

    #[cfg(unix)]
    #[test]
    fn keeps_the_permissions_of_the_replaced_file() {
        use std::os::unix::fs::PermissionsExt;
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("script.sh");
        fs::write(&path, b"old").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o751)).unwrap();
        atomic_write(&path, b"new").unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o751
        );
    }

    #[test]
    fn a_failed_rename_leaves_the_target_untouched_and_no_temporary_file() {
        let directory = tempfile::tempdir().unwrap();
        // A non-empty directory in the target's place makes the final rename fail.
        let path = directory.path().join("plan.md");
        fs::create_dir(&path).unwrap();
        fs::write(path.join("inside"), b"kept").unwrap();
        assert!(atomic_write(&path, b"content").is_err());
        assert_eq!(fs::read(path.join("inside")).unwrap(), b"kept");
        assert_eq!(entries(directory.path()), vec!["plan.md"]);
    }

    #[test]
    fn a_missing_directory_is_an_error() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("absent").join("plan.md");
        assert!(atomic_write(&path, b"content").is_err());
        assert!(!directory.path().join("absent").exists());
    }
}
