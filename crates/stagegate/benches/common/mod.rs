//! What the whole-process benchmarks share: the example feature, a repository holding it, and
//! one timed run of the real binary.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

pub const SPEC: &str = "# Feature Specification: Reports\n\n## Requirements\n\n- **FR-001**: System MUST export reports as CSV.\n- **FR-002**: System MUST email a weekly summary.\n\n### User Story 1 - Export (Priority: P1)\n\n1. **Given** a report, **When** I export it, **Then** I get a CSV file.\n";

/// Makes `root` a git repository holding the feature `specs/001-reports` with [`SPEC`].
pub fn repository_with_feature(root: &Path) -> Result<(), String> {
    let git = Command::new("git")
        .args(["init", "-q"])
        .current_dir(root)
        .status()
        .map_err(|error| format!("git: {error}"))?;
    if !git.success() {
        return Err("git init failed".into());
    }
    let feature = root.join("specs/001-reports");
    std::fs::create_dir_all(&feature).map_err(|error| error.to_string())?;
    std::fs::write(feature.join("spec.md"), SPEC).map_err(|error| error.to_string())
}

/// Runs the binary in `root`, checks its exit code, returns how long the process took.
pub fn stagegate(root: &Path, args: &[&str], expected: i32) -> Result<Duration, String> {
    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_stagegate"))
        .args(args)
        .current_dir(root)
        .env("STAGEGATE_NO_PROGRESS", "1")
        .env_remove("STAGEGATE_BACKEND")
        .output()
        .map_err(|error| format!("stagegate: {error}"))?;
    let elapsed = started.elapsed();
    if output.status.code() != Some(expected) {
        return Err(format!(
            "stagegate {} exited {:?}, expected {expected}: {}",
            args.join(" "),
            output.status.code(),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(elapsed)
}

pub fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
