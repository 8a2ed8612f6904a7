//! A fully cached re-run of the seed's plan stage, as a whole `stagegate` process, beside an
//! uncached run of the same stage with `mock` agents: `cargo bench -p stagegate`.
//!
//! Both runs go through the real binary in a temporary git repository: start-up, configuration,
//! the SQLite store, input checks, the stage (agents, review, synthesis, QA) and the stop at the
//! gate (`--no-input`, exit 10). The uncached run uses `--refresh`; the cached one finds every
//! answer in the cache, so it calls no agent. Target: the cached re-run ≤ 50 ms.
//!
//! Run without `--bench` (as `cargo test --benches` does) it does one quick round.

mod common;

use common::{millis, stagegate};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

const TARGET_CACHED_MS: f64 = 50.0;

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
    common::repository_with_feature(root)?;
    std::fs::write(
        root.join("stagegate.toml"),
        "[defaults]\nbackend = \"mock\"\n[backends.mock]\nkind = \"mock\"\nlatency = \"100ms\"\n",
    )
    .map_err(|error| error.to_string())
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}
