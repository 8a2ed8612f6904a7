//! Benchmarks of the stage loop: `cargo bench -p stagegate-engine` (add `-- --quick` for a short
//! run). A plain `main` rather than criterion: we want peak-memory figures, which criterion does
//! not give, and a light build.
//!
//! * Scenario A, overhead: 4 mock agents of 100 ms under a limit of 3, the reviewer, synthesizer
//!   and QA answering at once. The ideal makespan is ceil(4 / 3) × 100 ms = 200 ms; the whole
//!   `run_stage` is measured (nothing subtracted) and compared with it.
//! * Scenario B, scale: 1,000 and 10,000 agents answering at once, limits 3 and 64. Engine time
//!   per agent (`run_stage` ÷ agents) and peak memory (`VmHWM`). Each scenario runs in a fresh
//!   child process of this binary, so that its peak is its own; an idle child gives the baseline.
//!
//! Run without `--bench` (as `cargo test --benches` does) it does a short smoke run.

use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::time::{Duration, Instant};

use stagegate_engine::adaptive::Adaptation;
use stagegate_engine::backend::Phase;
use stagegate_engine::event::{Event, EventSink, NullSink, SinkError};
use stagegate_engine::mock_agent::MockAgent;
use stagegate_engine::prompt::{
    AgentOutputView, AgentView, NamedText, PromptContext, Prompts, StageView,
};
use stagegate_engine::retry_policy::RetryPolicy;
use stagegate_engine::stage::{StageContext, run_stage};
use stagegate_engine::stage_plan::{AgentPlan, BackendHandle, StagePlan};
use tokio_util::sync::CancellationToken;

const AGENT_LATENCY: Duration = Duration::from_millis(100);
const TARGET_OVERHEAD_PERCENT: f64 = 1.0;
const TARGET_MICROS_PER_AGENT: f64 = 20.0;
const TARGET_PEAK_MB: f64 = 100.0;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(position) = args.iter().position(|arg| arg == "--child") {
        return child(&args[position + 1..]);
    }
    let mode = if args.iter().any(|arg| arg == "--quick") {
        Mode::Quick
    } else if args.iter().any(|arg| arg == "--bench") {
        Mode::Full
    } else {
        Mode::Smoke
    };
    match parent(mode) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// `cargo bench`: every scenario, ~20 repetitions of A.
    Full,
    /// `cargo bench -- --quick`.
    Quick,
    /// No arguments (`cargo test --benches`, possibly unoptimized): a few seconds at most.
    Smoke,
}

fn parent(mode: Mode) -> Result<(), String> {
    let (makespan_runs, agent_counts, timing_runs): (usize, &[usize], usize) = match mode {
        Mode::Full => (20, &[1_000, 10_000], 3),
        Mode::Quick => (6, &[1_000, 10_000], 1),
        Mode::Smoke if cfg!(debug_assertions) => (2, &[1_000], 1),
        Mode::Smoke => (3, &[1_000, 10_000], 1),
    };
    eprintln!(
        "stage_loop bench ({mode:?}{}): scenario A × {makespan_runs}, scenario B in child processes",
        if cfg!(debug_assertions) {
            ", unoptimized build"
        } else {
            ""
        }
    );

    let runtime = multi_thread_runtime()?;
    let makespan = scenario_a(&runtime, makespan_runs)?;
    drop(runtime);

    let idle = run_child(&["idle".to_owned()])?;
    let mut scale = Vec::new();
    let mut cases: Vec<(usize, usize, Flavor)> = Vec::new();
    for &agents in agent_counts {
        for limit in [3, 64] {
            cases.push((agents, limit, Flavor::MultiThread));
        }
    }
    if mode != Mode::Smoke {
        // For comparison: the same work without cross-thread wake-ups.
        cases.push((10_000, 3, Flavor::CurrentThread));
    }
    for (agents, limit, flavor) in cases {
        let report = run_child(&[
            "agents".to_owned(),
            agents.to_string(),
            limit.to_string(),
            timing_runs.to_string(),
            flavor.as_str().to_owned(),
        ])?;
        scale.push(ScaleRow {
            agents,
            limit,
            flavor,
            report,
        });
    }

    print_table(&makespan, idle.peak_kb, &scale, makespan_runs, timing_runs);
    if mode != Mode::Smoke {
        print_costs(&costs(10_000)?);
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavor {
    MultiThread,
    CurrentThread,
}

impl Flavor {
    fn as_str(self) -> &'static str {
        match self {
            Flavor::MultiThread => "multi-thread",
            Flavor::CurrentThread => "current-thread",
        }
    }
}

struct ScaleRow {
    agents: usize,
    limit: usize,
    flavor: Flavor,
    report: ChildReport,
}

// ----- scenario A ---------------------------------------------------------------------

struct Makespan {
    /// Measured ÷ ideal, sorted.
    ratios: Vec<f64>,
    /// Median of two back-to-back `sleep(100 ms)` on the same runtime: what the timer alone
    /// adds to two waves.
    timer_floor: Duration,
    /// Median of the same stage with agents answering at once: the engine's own work.
    engine_alone: Duration,
}

/// Scenario A, `runs` times after one warm-up.
fn scenario_a(runtime: &tokio::runtime::Runtime, runs: usize) -> Result<Makespan, String> {
    let (agents, limit) = (4_u32, 3_u32);
    let plan = stage_plan(agents as usize, limit as usize, AGENT_LATENCY);
    let instant_plan = stage_plan(agents as usize, limit as usize, Duration::ZERO);
    let context = stage_context()?;
    // ceil(4 / 3) waves of 100 ms.
    let waves = agents.div_ceil(limit);
    let ideal = AGENT_LATENCY * waves;
    let time_stage = |plan: &StagePlan| -> Result<Duration, String> {
        let started = Instant::now();
        runtime
            .block_on(run_stage(plan, &context, &mut NullSink))
            .map_err(|error| format!("scenario A: {error}"))?;
        Ok(started.elapsed())
    };
    let mut ratios = Vec::with_capacity(runs);
    let mut floors = Vec::with_capacity(runs);
    let mut alone = Vec::with_capacity(runs);
    for run in 0..=runs {
        let elapsed = time_stage(&plan)?;
        let started = Instant::now();
        runtime.block_on(async {
            for _ in 0..waves {
                tokio::time::sleep(AGENT_LATENCY).await;
            }
        });
        let floor = started.elapsed();
        let engine = time_stage(&instant_plan)?;
        if run > 0 {
            ratios.push(elapsed.as_secs_f64() / ideal.as_secs_f64());
            floors.push(floor);
            alone.push(engine);
        }
    }
    ratios.sort_by(f64::total_cmp);
    floors.sort_unstable();
    alone.sort_unstable();
    Ok(Makespan {
        ratios,
        timer_floor: floors[floors.len() / 2],
        engine_alone: alone[alone.len() / 2],
    })
}

// ----- scenario B, in a child process -------------------------------------------------

#[derive(Debug, Clone, Copy)]
struct ChildReport {
    /// Median `run_stage` time, nanoseconds (0 for the idle child).
    nanos: u128,
    /// Median from `run_stage`'s start to `AgentsFinished`, in as many more runs, nanoseconds.
    agent_phase_nanos: u128,
    peak_kb: u64,
}

fn run_child(args: &[String]) -> Result<ChildReport, String> {
    let exe =
        std::env::current_exe().map_err(|error| format!("cannot find this binary: {error}"))?;
    let output = Command::new(&exe)
        .arg("--child")
        .args(args)
        .output()
        .map_err(|error| format!("cannot run {}: {error}", exe.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "child {args:?} failed ({}): {}{}",
            output.status,
            stdout,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let line = stdout
        .lines()
        .find_map(|line| line.strip_prefix("RESULT "))
        .ok_or_else(|| format!("child {args:?} reported nothing: {stdout}"))?;
    let field = |name: &str| -> Result<u128, String> {
        line.split_whitespace()
            .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
            .ok_or_else(|| format!("child {args:?}: no {name} in {line}"))?
            .parse()
            .map_err(|error| format!("child {args:?}: bad {name} in {line}: {error}"))
    };
    Ok(ChildReport {
        nanos: field("nanos")?,
        agent_phase_nanos: field("agent_phase_nanos")?,
        peak_kb: u64::try_from(field("peak_kb")?).map_err(|error| error.to_string())?,
    })
}

fn child(args: &[String]) -> ExitCode {
    match child_scenario(args) {
        Ok(timing) => {
            println!(
                "RESULT nanos={} agent_phase_nanos={} peak_kb={}",
                timing.nanos,
                timing.agent_phase_nanos,
                timing.peak_kb.unwrap_or_default()
            );
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

struct ChildTiming {
    nanos: u128,
    agent_phase_nanos: u128,
    peak_kb: Option<u64>,
}

/// Runs one scenario.
fn child_scenario(args: &[String]) -> Result<ChildTiming, String> {
    let number = |index: usize| -> Result<usize, String> {
        args.get(index)
            .ok_or_else(|| format!("missing argument {index} in {args:?}"))?
            .parse()
            .map_err(|error| format!("bad argument {index} in {args:?}: {error}"))
    };
    match args.first().map(String::as_str) {
        // The same fixed costs as a scenario (runtime, templates, a context), no stage.
        Some("idle") => {
            let runtime = multi_thread_runtime()?;
            let _context = stage_context()?;
            runtime.block_on(tokio::task::yield_now());
            Ok(ChildTiming {
                nanos: 0,
                agent_phase_nanos: 0,
                peak_kb: peak_kb(),
            })
        }
        Some("agents") => {
            let (agents, limit, runs) = (number(1)?, number(2)?, number(3)?.max(1));
            let runtime = match args.get(4).map(String::as_str) {
                Some("current-thread") => tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|error| format!("cannot start tokio: {error}"))?,
                _ => multi_thread_runtime()?,
            };
            let plan = stage_plan(agents, limit, Duration::ZERO);
            let context = stage_context()?;
            let mut times = Vec::with_capacity(runs);
            let mut peak = None;
            for _ in 0..runs {
                let started = Instant::now();
                runtime
                    .block_on(run_stage(&plan, &context, &mut NullSink))
                    .map_err(|error| format!("{agents} agents: {error}"))?;
                times.push(started.elapsed().as_nanos());
                // The first run's peak: later runs only time.
                if peak.is_none() {
                    peak = peak_kb();
                }
            }
            times.sort_unstable();

            let mut agent_phase = Vec::with_capacity(runs);
            for _ in 0..runs {
                let mut clock = PhaseClock::default();
                let started = Instant::now();
                runtime
                    .block_on(run_stage(&plan, &context, &mut clock))
                    .map_err(|error| format!("{agents} agents: {error}"))?;
                if let Some(at) = clock.agents_finished {
                    agent_phase.push((at - started).as_nanos());
                }
            }
            agent_phase.sort_unstable();
            let agent_phase_nanos = agent_phase.get(agent_phase.len() / 2).copied().unwrap_or(0);
            Ok(ChildTiming {
                nanos: times[times.len() / 2],
                agent_phase_nanos,
                peak_kb: peak,
            })
        }
        other => Err(format!("unknown child scenario {other:?}")),
    }
}

/// Notes when the agent phase ended; drops everything else.
#[derive(Debug, Default)]
struct PhaseClock {
    agents_finished: Option<Instant>,
}

impl EventSink for PhaseClock {
    async fn emit(&mut self, event: &Event) -> Result<(), SinkError> {
        if matches!(event, Event::AgentsFinished { .. }) {
            self.agents_finished = Some(Instant::now());
        }
        Ok(())
    }
}

/// `VmHWM` (peak resident set) of this process, kB.
fn peak_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

// ----- where the time goes -----------------------------------------------------------

/// Per-call costs measured alone, to explain scenario B's figures.
struct Costs {
    agents: usize,
    agent_prompt_bytes: usize,
    render_agent_prompt: Duration,
    hash_agent_prompt: Duration,
    review_prompt_bytes: usize,
    render_review_prompt: Duration,
    hash_review_prompt: Duration,
}

fn costs(agents: usize) -> Result<Costs, String> {
    let context = stage_context()?;
    let plan = stage_plan(1, 3, Duration::ZERO);
    let agent = &plan.agents[0];
    let outputs: Vec<AgentOutputView> = (0..agents)
        .map(|index| AgentOutputView {
            agent: format!("agent-{index:05}"),
            role: format!("Role of agent-{index:05}"),
            output: format!(
                "# agent-{index:05}: plan (agent)\n\nMock output from `agent-{index:05}` for stage \
                 `plan`, phase `agent`.\n\nCONFIDENCE: 0.80\n"
            ),
        })
        .collect();
    let prompt_context = |outputs: &[AgentOutputView]| -> String {
        let prompt_context = PromptContext {
            stage: StageView {
                id: &plan.id,
                name: &plan.name,
                question: &plan.question,
                required: &plan.required,
                optional: &plan.optional,
            },
            agent: AgentView {
                id: &agent.id,
                role: &agent.role,
                task: &agent.task,
            },
            inputs: &context.inputs,
            outputs,
            failures: &[],
            review: None,
            artifact: None,
            artifacts: &[],
            feedback: None,
            comments: &[],
            previous: None,
            guidance: &[],
            discovery: None,
            cuts: &[],
        };
        let phase = if outputs.is_empty() {
            Phase::Agent
        } else {
            Phase::Review
        };
        context
            .prompts
            .render(phase, &agent.id, &prompt_context)
            .unwrap_or_default()
    };

    let started = Instant::now();
    let mut agent_prompt = String::new();
    for _ in 0..agents {
        agent_prompt = std::hint::black_box(prompt_context(&[]));
    }
    let render_agent_prompt = started.elapsed() / agents as u32;
    let started = Instant::now();
    for _ in 0..agents {
        std::hint::black_box(blake3::hash(std::hint::black_box(agent_prompt.as_bytes())));
    }
    let hash_agent_prompt = started.elapsed() / agents as u32;

    let started = Instant::now();
    let review_prompt = std::hint::black_box(prompt_context(&outputs));
    let render_review_prompt = started.elapsed();
    let started = Instant::now();
    std::hint::black_box(blake3::hash(review_prompt.as_bytes()));
    let hash_review_prompt = started.elapsed();
    Ok(Costs {
        agents,
        agent_prompt_bytes: agent_prompt.len(),
        render_agent_prompt,
        hash_agent_prompt,
        review_prompt_bytes: review_prompt.len(),
        render_review_prompt,
        hash_review_prompt,
    })
}

// ----- plans --------------------------------------------------------------------------

fn multi_thread_runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| format!("cannot start tokio: {error}"))
}

fn mock(latency: Duration) -> BackendHandle {
    BackendHandle {
        name: "mock".to_owned(),
        backend: Arc::new(MockAgent::new(latency, 0, None)),
    }
}

fn agent_plan(id: String, backend: &BackendHandle) -> AgentPlan {
    AgentPlan {
        role: format!("Role of {id}"),
        id,
        task: "Analyse the feature from this role's point of view".to_owned(),
        backend: backend.clone(),
        fallback: None,
        timeout: Duration::from_secs(30),
        retry: RetryPolicy::new(2, Duration::from_secs(1)),
        required: false,
        memory_limit_bytes: 256 << 20,
    }
}

/// `agents` mock agents of `latency` under `limit`; reviewer, synthesizer and QA answer at once;
/// one required artifact, which is also the summary.
fn stage_plan(agents: usize, limit: usize, latency: Duration) -> StagePlan {
    let agent_backend = mock(latency);
    let instant = mock(Duration::ZERO);
    StagePlan {
        id: "plan".to_owned(),
        name: "Stage A: Planning/Spec".to_owned(),
        question: "Planning artifacts synthesized. Approve to proceed?".to_owned(),
        required: vec!["plan.md".to_owned()],
        optional: Vec::new(),
        inputs: vec!["spec.md".to_owned()],
        summary_artifact: "plan.md".to_owned(),
        agents: (0..agents)
            .map(|index| agent_plan(format!("agent-{index:05}"), &agent_backend))
            .collect(),
        reviewer: agent_plan("lead-reviewer-a".to_owned(), &instant),
        synthesizer: agent_plan("lead-synthesizer-a".to_owned(), &instant),
        qa: agent_plan("main-agent".to_owned(), &instant),
        concurrency: limit,
        min_success_ratio: 0.75,
        stage_timeout: Duration::from_secs(600),
        synthesis_iterations: 1,
        output_cap_bytes: 1 << 20,
        kill_grace: Duration::from_secs(2),
        adaptation: Adaptation::default(),
    }
}

/// A context with a small but realistic spec.md (about 2 KB).
fn stage_context() -> Result<StageContext, String> {
    let mut spec = String::from("# Feature: report export\n\n## Requirements\n\n");
    for index in 1..=20 {
        spec.push_str(&format!(
            "- FR-{index:03}: the system MUST export report {index} as CSV within 2 seconds.\n"
        ));
    }
    spec.push_str("\n## User stories\n\n- As an analyst I export a report to share it.\n");
    Ok(StageContext {
        run_id: "bench".to_owned(),
        repo_root: std::env::temp_dir(),
        feature_dir: std::env::temp_dir(),
        inputs: Arc::new(vec![NamedText {
            name: "spec.md".to_owned(),
            content: spec,
        }]),
        prompts: Arc::new(
            Prompts::embedded().map_err(|error| format!("templates do not load: {error}"))?,
        ),
        cancel: CancellationToken::new(),
    })
}

// ----- report -------------------------------------------------------------------------

fn percentile(sorted: &[f64], fraction: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (fraction * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn verdict(ok: bool) -> &'static str {
    if ok { "yes" } else { "**no**" }
}

fn megabytes(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

fn print_table(
    makespan: &Makespan,
    idle_kb: u64,
    scale: &[ScaleRow],
    makespan_runs: usize,
    timing_runs: usize,
) {
    let ratios = &makespan.ratios;
    let median = percentile(ratios, 0.5);
    let p90 = percentile(ratios, 0.9);
    let overhead = |ratio: f64| (ratio - 1.0) * 100.0;
    let ideal_ms = 200.0;
    println!();
    println!(
        "Scenario A: 4 agents × 100 ms, limit 3, ideal makespan 200 ms; whole `run_stage`, {makespan_runs} runs"
    );
    println!();
    println!("| figure | median | p90 | target | met (p90) |");
    println!("|---|---|---|---|---|");
    println!(
        "| makespan ÷ ideal | {median:.4} | {p90:.4} | ≤ {:.2} | {} |",
        1.0 + TARGET_OVERHEAD_PERCENT / 100.0,
        verdict(overhead(p90) <= TARGET_OVERHEAD_PERCENT)
    );
    println!(
        "| overhead (measured − ideal) ÷ ideal | {:.2} % | {:.2} % | ≤ {TARGET_OVERHEAD_PERCENT} % | {} |",
        overhead(median),
        overhead(p90),
        verdict(overhead(p90) <= TARGET_OVERHEAD_PERCENT)
    );
    println!(
        "| makespan | {:.2} ms | {:.2} ms | ≤ {:.0} ms | |",
        median * ideal_ms,
        p90 * ideal_ms,
        ideal_ms * (1.0 + TARGET_OVERHEAD_PERCENT / 100.0)
    );
    println!(
        "| of which: timer, 2 × `sleep(100 ms)` alone | {:.2} ms | | | |",
        makespan.timer_floor.as_secs_f64() * 1e3
    );
    println!(
        "| of which: engine, same stage with 0 ms agents | {:.2} ms | | | |",
        makespan.engine_alone.as_secs_f64() * 1e3
    );
    println!();
    println!(
        "Scenario B: agents answering at once, quorum 0.75; engine time = whole `run_stage` ÷ agents (median of {timing_runs}); \
         agent phase = start to AgentsFinished (median of as many runs with a sink that notes it); peak = VmHWM of a fresh child process (idle child: {:.1} MB)",
        megabytes(idle_kb)
    );
    println!();
    println!(
        "| agents | limit | runtime | total | µs per agent (≤ {TARGET_MICROS_PER_AGENT}) | of which agent phase | peak (≤ {TARGET_PEAK_MB} MB) | peak − idle | met |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for row in scale {
        let report = row.report;
        let agents = row.agents as f64;
        let total_ms = report.nanos as f64 / 1e6;
        let micros = report.nanos as f64 / 1e3 / agents;
        let agent_phase_micros = report.agent_phase_nanos as f64 / 1e3 / agents;
        let peak_mb = megabytes(report.peak_kb);
        let delta_mb = megabytes(report.peak_kb.saturating_sub(idle_kb));
        let met = match row.flavor {
            Flavor::MultiThread => {
                verdict(micros <= TARGET_MICROS_PER_AGENT && peak_mb <= TARGET_PEAK_MB)
            }
            Flavor::CurrentThread => "(comparison)",
        };
        println!(
            "| {} | {} | {} | {total_ms:.1} ms | {micros:.2} | {agent_phase_micros:.2} | {peak_mb:.1} MB | {delta_mb:.1} MB | {met} |",
            row.agents,
            row.limit,
            row.flavor.as_str(),
        );
    }
}

fn print_costs(costs: &Costs) {
    let micros = |duration: Duration| duration.as_secs_f64() * 1e6;
    let millis = |duration: Duration| duration.as_secs_f64() * 1e3;
    println!();
    println!("Where an agent's time goes (measured alone, same spec.md as scenario B)");
    println!();
    println!("| step | cost |");
    println!("|---|---|");
    println!(
        "| render one agent prompt ({} bytes) | {:.2} µs |",
        costs.agent_prompt_bytes,
        micros(costs.render_agent_prompt)
    );
    println!(
        "| blake3 of that prompt (a cache key) | {:.2} µs |",
        micros(costs.hash_agent_prompt)
    );
    println!(
        "| render the review prompt over {} outputs ({:.1} MB) | {:.1} ms |",
        costs.agents,
        costs.review_prompt_bytes as f64 / 1e6,
        millis(costs.render_review_prompt)
    );
    println!(
        "| blake3 of that review prompt | {:.2} ms |",
        millis(costs.hash_review_prompt)
    );
}
