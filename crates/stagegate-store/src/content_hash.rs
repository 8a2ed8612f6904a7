//! Content hashes that bind approvals (and, later, cache entries) to the exact bytes they saw.
//!
//! An approval counts only while the file still hashes to what was approved, like a stale
//! pull-request review; blake3 is fast enough to rehash every artifact on every `stagegate run`.

use std::path::Path;

/// The blake3 hash of `bytes`, as 64 lowercase hex digits.
pub fn content_hash(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

/// The blake3 hash of the file at `path`, streamed so that large files are not read into memory.
///
/// Equal to `content_hash(&std::fs::read(path)?)`.
///
/// Only a regular file is hashed: opening a FIFO would block forever and a device may never
/// end, so anything else is an `InvalidInput` error.
pub fn file_hash(path: &Path) -> std::io::Result<String> {
    if !std::fs::metadata(path)?.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{} is not a regular file", path.display()),
        ));
    }
    let file = std::fs::File::open(path)?;
    let mut hasher = blake3::Hasher::new();
    hasher.update_reader(file)?;
    Ok(hasher.finalize().to_hex().to_string())
}

#[cfg(test)]
#[expect(
    clippy::unwrap_used,
    reason = "a failing test should stop at the failing line"
)]
mod tests {
    use super::*;

    #[test]
    fn known_vector() {
        // blake3 of the empty input, from the reference implementation's test vectors.
        assert_eq!(
            content_hash(b""),
            "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
        );
    }

    #[test]
    fn file_hash_matches_content_hash() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("plan.md");
        let content = b"# Plan\n".repeat(10_000);
        std::fs::write(&path, &content).unwrap();
        assert_eq!(file_hash(&path).unwrap(), content_hash(&content));
    }
}
