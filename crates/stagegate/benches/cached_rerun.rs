//! A fully cached re-run of the seed's plan stage, as a whole `stagegate` process, beside an
//! uncached run of the same stage with `mock` agents: `cargo bench -p stagegate`.
//!
//! Both runs go through the real binary in a temporary git repository: start-up, configuration,
//! the SQLite store, input checks, the stage (agents, review, synthesis, QA) and the stop at the
//! gate (`--no-input`, exit 10). The uncached run uses `--refresh`; the cached one finds every
//! answer in the cache, so it calls no agent. Target: the cached re-run ≤ 50 ms.
//!
//! Run without `--bench` (as `cargo test --benches` does) it does one quick round.

use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

const TARGET_CACHED_MS: f64 = 50.0;
const SPEC: &str = "# Feature Specification: Reports\n\n## Requirements\n\n- **FR-001**: System MUST export reports as CSV.\n- **FR-002**: System MUST email a weekly summary.\n\n### User Story 1 - Export (Priority: P1)\n\n1. **Given** a report, **When** I export it, **Then** I get a CSV file.\n";

fn main() -> ExitCode {
    let full = std::env::args().any(|arg| arg == "--bench");
    match bench(if full { 15 } else { 1 }) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn bench(rounds: usize) -> Result<(), String> {
    let repo = tempfile::tempdir().map_err(|error| error.to_string())?;
    let root = repo.path();
    setup(root)?;
    stagegate(root, &["approve", "spec"], 0)?;
    // The first run fills the cache.
    stagegate(root, &["run", "plan", "--no-input"], 10)?;
    let mut uncached = Vec::new();
    let mut cached = Vec::new();
    for _ in 0..rounds {
        uncached.push(stagegate(
            root,
            &["run", "plan", "--no-input", "--refresh"],
            10,
        )?);
        cached.push(stagegate(root, &["run", "plan", "--no-input"], 10)?);
    }
    let (uncached, cached) = (median(&mut uncached), median(&mut cached));
    println!(
        "| run of the plan stage (whole process, mock agents of 100 ms) | median ms | target |"
    );
    println!("|---|---|---|");
    println!("| uncached (`--refresh`) | {:.1} | |", millis(uncached));
    println!(
        "| fully cached re-run | {:.1} | ≤ {TARGET_CACHED_MS} ms {} |",
        millis(cached),
        if millis(cached) <= TARGET_CACHED_MS {
            "met"
        } else {
            "**missed**"
        }
    );
    println!(
        "| cached ÷ uncached | {:.3} | |",
        millis(cached) / millis(uncached).max(f64::EPSILON)
    );
    Ok(())
}

fn setup(root: &Path) -> Result<(), String> {
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
    std::fs::write(feature.join("spec.md"), SPEC).map_err(|error| error.to_string())?;
    std::fs::write(
        root.join("stagegate.toml"),
        "[defaults]\nbackend = \"mock\"\n[backends.mock]\nkind = \"mock\"\nlatency = \"100ms\"\n",
    )
    .map_err(|error| error.to_string())
}

/// Runs the binary in `root`, checks its exit code, returns how long the process took.
fn stagegate(root: &Path, args: &[&str], expected: i32) -> Result<Duration, String> {
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

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
