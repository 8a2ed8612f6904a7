//! The whole `stagegate` binary, as a user runs it, at 4, 1,000 and 10,000 agents:
//! `cargo bench -p stagegate --bench whole_process`.
//!
//! Every scenario is one `stagegate run STAGE --no-input --refresh` in a temporary git
//! repository with `mock` agents: start-up, configuration, the SQLite store (durable: WAL,
//! group commit), the stage (agents, review, synthesis, QA) and the stop at the gate (exit 10).
//! For each it prints the wall time, the time per agent, the process's peak memory (its own
//! `ru_maxrss`, read by a helper process that runs nothing else) and the ratio to the ideal
//! makespan. The baseline, measured in the same run, is `stagegate --version`: what any process
//! of this binary costs before it does any work.
//!
//! With `STAGEGATE_LANGGRAPH_PYTHON` naming a Python that has `langgraph`, the same stage shape
//! (fan-out to N no-op agents under the same concurrency limit, then review, synthesis and QA)
//! also runs in LangGraph (`benches/langgraph_stage.py`, in-process, memory checkpointer) and
//! the ratio is printed.
//!
//! With `--bench` each figure is the median of 5 runs (LangGraph's of 3): on a 2-core machine
//! one run of a 40 ms stage varies by 10 % and more, and the ratio with it.
//!
//! Run without `--bench` (as `cargo test --benches` does) it does one quick, small round.

mod common;

use common::{millis, stagegate};
use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

/// One measured shape of stage.
struct Scenario {
    name: &'static str,
    /// `None`: the seed's own plan stage (4 agents, limit 3).
    agents: Option<usize>,
    limit: usize,
    latency_ms: u64,
    /// The makespan with zero overhead: agents in waves, then review, synthesis, QA.
    ideal: Duration,
}

fn scenarios(full: bool) -> Vec<Scenario> {
    let mut list = vec![Scenario {
        name: "the seed's plan stage: 4 agents of 100 ms, limit 3",
        agents: None,
        limit: 3,
        latency_ms: 100,
        // Two waves of agents, the review, two waves of the four artifacts' syntheses, QA.
        ideal: Duration::from_millis(600),
    }];
    if full {
        list.push(Scenario {
            name: "1,000 agents of 0 ms, limit 100",
            agents: Some(1_000),
            limit: 100,
            latency_ms: 0,
            ideal: Duration::ZERO,
        });
        list.push(Scenario {
            name: "10,000 agents of 0 ms, limit 1,000",
            agents: Some(10_000),
            limit: 1_000,
            latency_ms: 0,
            ideal: Duration::ZERO,
        });
    } else {
        list.push(Scenario {
            name: "100 agents of 0 ms, limit 10",
            agents: Some(100),
            limit: 10,
            latency_ms: 0,
            ideal: Duration::ZERO,
        });
    }
    list
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if let Some(position) = args.iter().position(|arg| arg == "--measure-child") {
        return measure_child(&args[position + 1..]);
    }
    let full = args.iter().any(|arg| arg == "--bench");
    match bench(full) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn bench(full: bool) -> Result<(), String> {
    let rounds = if full { 5 } else { 1 };
    let baseline = median_of(rounds * 3, || {
        let repo = tempfile::tempdir().map_err(|error| error.to_string())?;
        measured(repo.path(), &["--version"], 0).map(|(elapsed, _)| elapsed)
    })?;
    println!(
        "| scenario (whole process, durable) | wall ms | µs per agent | peak RSS MB | ÷ ideal | ÷ `--version` |"
    );
    println!("|---|---|---|---|---|---|");
    println!(
        "| `stagegate --version` (baseline) | {:.1} | | | | 1 |",
        millis(baseline)
    );
    for scenario in scenarios(full) {
        let mut rss = 0;
        let wall = median_of(rounds, || {
            let repo = tempfile::tempdir().map_err(|error| error.to_string())?;
            let stage = setup(repo.path(), &scenario)?;
            stagegate(repo.path(), &["approve", "spec"], 0)?;
            let (elapsed, peak) =
                measured(repo.path(), &["run", stage, "--no-input", "--refresh"], 10)?;
            rss = rss.max(peak);
            Ok(elapsed)
        })?;
        let agents = scenario.agents.unwrap_or(4);
        let per_agent = wall.as_secs_f64() * 1e6 / agents as f64;
        let ideal = if scenario.ideal.is_zero() {
            "—".to_owned()
        } else {
            format!("{:.3}", wall.as_secs_f64() / scenario.ideal.as_secs_f64())
        };
        println!(
            "| {} | {:.1} | {per_agent:.1} | {:.1} | {ideal} | {:.1} |",
            scenario.name,
            millis(wall),
            rss as f64 / 1024.0,
            wall.as_secs_f64() / baseline.as_secs_f64()
        );
        if let Some(python) = std::env::var_os("STAGEGATE_LANGGRAPH_PYTHON") {
            let rounds = if full { 3 } else { 1 };
            langgraph(Path::new(&python), &scenario, agents, wall, rounds)?;
        }
    }
    Ok(())
}

/// The same stage shape in LangGraph, timed as a whole Python process (the median of
/// `rounds` runs).
fn langgraph(
    python: &Path,
    scenario: &Scenario,
    agents: usize,
    ours: Duration,
    rounds: usize,
) -> Result<(), String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/langgraph_stage.py");
    let elapsed = median_of(rounds, || {
        let started = Instant::now();
        let output = Command::new(python)
            .arg(&script)
            .args([
                agents.to_string(),
                scenario.limit.to_string(),
                scenario.latency_ms.to_string(),
            ])
            .output()
            .map_err(|error| format!("{}: {error}", python.display()))?;
        let elapsed = started.elapsed();
        if !output.status.success() {
            return Err(format!(
                "langgraph_stage.py failed: {}",
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        Ok(elapsed)
    })?;
    println!(
        "| the same in LangGraph (whole Python process) | {:.1} | {:.1} | | | LangGraph ÷ stagegate {:.1} |",
        millis(elapsed),
        elapsed.as_secs_f64() * 1e6 / agents as f64,
        elapsed.as_secs_f64() / ours.as_secs_f64()
    );
    Ok(())
}

/// Writes the repository for `scenario`; returns the stage to run.
fn setup(root: &Path, scenario: &Scenario) -> Result<&'static str, String> {
    common::repository_with_feature(root)?;
    let mut config = format!(
        "[defaults]\nbackend = \"m\"\n[backends.m]\nkind = \"mock\"\nlatency = \"{}ms\"\n[timeouts]\nstage = \"3600s\"\n",
        scenario.latency_ms
    );
    let stage = match scenario.agents {
        None => "plan",
        Some(count) => {
            let ids: Vec<String> = (0..count).map(|index| format!("\"a{index}\"")).collect();
            config.push_str(&format!(
                "[stages.big]\nname = \"Big\"\nagents = [{}]\nreviewer = \"lead-reviewer-a\"\nsynthesizer = \"lead-synthesizer-a\"\nqa = \"main-agent\"\nrequired = [\"big.md\"]\noptional = []\ninputs = [\"spec.md\"]\nquestion = \"Big?\"\nconcurrency = {}\n",
                ids.join(", "),
                scenario.limit
            ));
            for index in 0..count {
                config.push_str(&format!(
                    "[agents.a{index}]\nrole = \"Analyst {index}\"\ntask = \"Analyse part {index}\"\n"
                ));
            }
            "big"
        }
    };
    std::fs::write(root.join("stagegate.toml"), config).map_err(|error| error.to_string())?;
    Ok(stage)
}

/// Runs the binary through a helper process of this bench that waits for it alone, so that
/// the helper's `RUSAGE_CHILDREN` peak is the binary's own. Returns (wall time, peak RSS KiB).
fn measured(root: &Path, args: &[&str], expected: i32) -> Result<(Duration, u64), String> {
    let output = Command::new(std::env::current_exe().map_err(|error| error.to_string())?)
        .arg("--measure-child")
        .arg(expected.to_string())
        .args(args)
        .current_dir(root)
        .output()
        .map_err(|error| format!("bench helper: {error}"))?;
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).into_owned());
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let mut words = text.split_whitespace();
    let nanos: u64 = words
        .next()
        .and_then(|word| word.parse().ok())
        .ok_or("the helper printed no time")?;
    let rss: u64 = words
        .next()
        .and_then(|word| word.parse().ok())
        .ok_or("the helper printed no peak memory")?;
    Ok((Duration::from_nanos(nanos), rss))
}

/// The helper: runs `stagegate ARGS`, checks its exit code, prints "NANOS PEAK_RSS_KIB".
fn measure_child(args: &[String]) -> ExitCode {
    let Some((expected, args)) = args.split_first() else {
        return ExitCode::FAILURE;
    };
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let expected: i32 = expected.parse().unwrap_or(0);
    match stagegate(Path::new("."), &args, expected) {
        Ok(elapsed) => {
            let peak = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
                .map(|usage| usage.max_rss())
                .unwrap_or(0);
            println!("{} {peak}", elapsed.as_nanos());
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}

fn median_of(
    rounds: usize,
    mut sample: impl FnMut() -> Result<Duration, String>,
) -> Result<Duration, String> {
    let mut samples = (0..rounds)
        .map(|_| sample())
        .collect::<Result<Vec<_>, _>>()?;
    samples.sort();
    Ok(samples[samples.len() / 2])
}
