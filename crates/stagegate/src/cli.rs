//! The command line, parsed purely (no I/O): what the person asked for.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "stagegate",
    version,
    about = "Run spec-kit's spec-driven development as stages with gates",
    after_help = "Exit codes: 0 done (every gate approved), 1 internal or I/O error, 2 usage or configuration error, 3 stage failed, 4 rejected at a gate, 5 a stage input is missing or stale, 6 the gate was already decided by someone else (nothing changed), 10 stopped at a gate awaiting a decision.",
    long_about = "Runs spec-kit's workflow as stages with gates: in each stage several role agents work in parallel, a reviewer reconciles them, a synthesizer writes the stage's artifacts, the main agent checks them, and a person approves, rejects or modifies them before anything moves on."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Log every event of a run on stderr, as text or JSON lines (levels from STAGEGATE_LOG or
    /// RUST_LOG, default info); turns the live display off.
    #[arg(long, value_enum, global = true, value_name = "FORMAT")]
    pub log_format: Option<crate::event_log::LogFormat>,
    #[command(flatten)]
    pub verbosity: VerbosityArgs,
}

/// `-q` / `-v`: how much stagegate says on stderr (data on stdout is never affected).
#[derive(Debug, Args, Clone, Copy, Default)]
pub struct VerbosityArgs {
    /// Say less: no progress, no confirmations or hints; warnings, errors, a gate's question and
    /// the commands to decide it remain. Logs (--log-format) default to warnings.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Say more: which configuration files were read, and every attempt as it starts; logs
    /// (--log-format) default to debug, -vv to trace.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run stages in order (`all` = plan prep analyze), stopping at each gate for a decision.
    Run(RunArgs),
    /// Approve a pending gate (publishing its artifacts), `spec`, or `implementation`.
    Approve(ApproveArgs),
    /// Reject a pending gate; nothing is published.
    Reject(RejectArgs),
    /// Modify a pending gate's artifacts: in $EDITOR, or reworked with --feedback and --comment.
    Modify(ModifyArgs),
    /// Continue a run that stopped at a gate that has since been decided.
    Resume(ResumeArgs),
    /// Show runs and where each stands.
    Status(StatusArgs),
    /// Free the locks of a run that is no longer running (refused while its process lives,
    /// unless --force).
    Unlock(UnlockArgs),
    /// Put the feature directory back as it was before a run's approval published into it.
    Restore(RestoreArgs),
    /// Show metrics over the runs in the store.
    Metrics(MetricsArgs),
    /// Manage the cache of agent answers.
    Cache(CacheArgs),
    /// List runs: stages, feature, state, when, and the decisions taken.
    Runs(RunsArgs),
    /// Print what an agent attempt received and answered (prompt, output, stderr).
    Show(ShowArgs),
    /// Write a self-contained HTML report of a run: timeline, verdicts, decisions, metrics.
    Report(ReportArgs),
    /// Serve a local web dashboard of the runs, where pending gates can be decided.
    Serve(ServeArgs),
    /// Write a stagegate.toml that uses what this machine has (a CLI agent, an API key, a local
    /// server), saying what it chose and why.
    Init(InitArgs),
    /// Print a shell completion script on stdout (e.g. `stagegate completions bash >
    /// ~/.local/share/bash-completion/completions/stagegate`).
    Completions(CompletionsArgs),
    /// Host stage workflows and their agents for a Temporal cluster (`[cluster]`), taking work
    /// from its task queue until stopped; any number of workers, on any machines.
    Worker(WorkerArgs),
    /// Print the man page (roff) on stdout (e.g. `stagegate man | man -l -`).
    Man,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum, value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The address to listen on; port 0 picks a free port (the bound address is printed).
    #[arg(long, value_name = "IP:PORT", default_value = "127.0.0.1:7878")]
    pub addr: std::net::SocketAddr,
    /// Listen on this port of the loopback address instead of `--addr`.
    #[arg(long, value_name = "PORT", conflicts_with = "addr")]
    pub port: Option<u16>,
    /// Allow an address other than loopback (anyone who can reach it and has the token can
    /// decide gates).
    #[arg(long)]
    pub allow_remote: bool,
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// The name the attempts this worker runs are recorded with (default `HOST:PID`).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// A repository this worker has a checkout of, for runs whose `[cluster] repository` is
    /// NAME: their CLI agents run only on such workers, in PATH. Repeatable.
    #[arg(long = "repo", value_name = "NAME=PATH")]
    pub repositories: Vec<String>,
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Replace an existing stagegate.toml (and the extension's files).
    #[arg(long)]
    pub force: bool,
    /// Also install stagegate as a spec-kit extension: command files under
    /// .specify/extensions/stagegate/ and hooks in .specify/extensions.yml.
    #[arg(long)]
    pub speckit_extension: bool,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The run id (as `stagegate runs` lists them).
    #[arg(value_name = "RUN")]
    pub run: String,
    /// Where to write the page.
    #[arg(long, value_name = "FILE")]
    pub html: PathBuf,
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(Debug, Args)]
pub struct RunsArgs {
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The run id (as `stagegate runs` lists them).
    #[arg(value_name = "RUN")]
    pub run: String,
    /// The agent (or reviewer, synthesizer `lead-synthesizer-a.plan.md`, `main-agent`); every
    /// attempt of the run is listed when left out.
    #[arg(long)]
    pub agent: Option<String>,
    /// The attempt number; the last one when left out.
    #[arg(long)]
    pub attempt: Option<u32>,
    /// The stage, when the agent ran in several.
    #[arg(long)]
    pub stage: Option<String>,
    /// Which file to print.
    #[arg(long, value_enum, default_value_t = ShowFile::Output)]
    pub file: ShowFile,
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ShowFile {
    Prompt,
    Output,
    Stderr,
}

#[derive(Debug, Args)]
pub struct CacheArgs {
    #[command(subcommand)]
    pub action: CacheAction,
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(Debug, Clone, Copy, Subcommand)]
pub enum CacheAction {
    /// Delete every cached answer.
    Clear,
}

/// Options shared by commands that load the configuration and find the feature.
#[derive(Debug, Args, Clone, Default)]
pub struct CommonArgs {
    /// The feature directory (`specs/NNN-name`); found as spec-kit finds it when left out.
    #[arg(long, value_name = "DIR", global = true)]
    pub feature: Option<PathBuf>,
    /// Read this configuration file instead of `stagegate.toml`.
    #[arg(long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    /// Run on this Temporal cluster (`host:port`) instead of in this process; sets
    /// `cluster.temporal` over stagegate.toml and STAGEGATE_TEMPORAL_ADDRESS.
    #[arg(long, value_name = "ADDR", global = true)]
    pub temporal: Option<String>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Stage ids or aliases (`plan`/`a`, `prep`/`b`, `analyze`/`c`, yours), or `all`.
    #[arg(required = true, value_name = "STAGE")]
    pub stages: Vec<String>,
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    /// Ignore the cache.
    #[arg(long)]
    pub refresh: bool,
    /// At most this many agents at once (overrides every stage's setting); 1 runs them one at
    /// a time.
    #[arg(long, value_name = "N", value_parser = parse_concurrency)]
    pub concurrency: Option<usize>,
}

#[derive(Debug, Args, Clone, Default)]
pub struct OutputArgs {
    /// Never prompt: stop at the gate (exit 10).
    #[arg(long)]
    pub no_input: bool,
    /// Print one JSON event per line on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ApproveArgs {
    /// A run id, `spec`, `implementation`, or a stage (`plan`, …) to adopt the feature's
    /// existing artifacts of that stage as approved; the one pending gate when left out.
    #[arg(value_name = "RUN|spec|implementation|STAGE")]
    pub target: Option<String>,
    /// A note kept with the approval.
    #[arg(long)]
    pub note: Option<String>,
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(Debug, Args)]
pub struct RejectArgs {
    /// The run; the one pending gate when left out.
    #[arg(value_name = "RUN")]
    pub run: Option<String>,
    /// Why (required; kept in the audit trail).
    #[arg(long)]
    pub reason: String,
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(Debug, Args)]
pub struct ModifyArgs {
    /// The run; the one pending gate when left out.
    #[arg(value_name = "RUN")]
    pub run: Option<String>,
    /// Rework the artifacts through the synthesizer and QA with this feedback instead of
    /// opening $EDITOR.
    #[arg(long)]
    pub feedback: Option<String>,
    /// A comment on lines of a staged artifact, sent to the synthesizer with the lines it
    /// names (`plan.md:42` or `plan.md:40-44`); repeatable, with or without --feedback.
    #[arg(long, num_args = 2, value_names = ["FILE:LINES", "TEXT"], action = clap::ArgAction::Append)]
    pub comment: Vec<String>,
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// The run id (as `stagegate runs` lists them) of a run that stopped.
    #[arg(value_name = "RUN")]
    pub run: String,
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// One run in detail; every run when left out.
    #[arg(value_name = "RUN")]
    pub run: Option<String>,
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(Debug, Args)]
pub struct UnlockArgs {
    /// The run whose locks to remove (every stage it holds, whatever its process).
    #[arg(value_name = "RUN")]
    pub run: String,
    /// Remove them even if the process that holds them looks alive (it is another program that
    /// was given the same pid, say).
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The run whose publications to undo (its files replaced come back, those it created go).
    #[arg(value_name = "RUN")]
    pub run: String,
    /// Only this stage's gate (default: every gate of the run that published).
    #[arg(long, value_name = "STAGE")]
    pub stage: Option<String>,
    /// Restore even files that changed since the run published them (their content is lost).
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(Debug, Args)]
pub struct MetricsArgs {
    #[arg(long, value_enum, default_value_t = MetricsFormat::Json)]
    pub format: MetricsFormat,
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum MetricsFormat {
    Prometheus,
    Json,
}

/// `--concurrency N`: at least one agent must run, and the bound keeps the number meaningful
/// (the settings' own range check would report it as a configuration error instead).
fn parse_concurrency(text: &str) -> Result<usize, String> {
    const MOST: usize = 1024;
    match text.trim().parse::<usize>() {
        Ok(0) => {
            Err("at least one agent must run at once; give 1 to run them one at a time".to_owned())
        }
        Ok(value) if value > MOST => Err(format!("at most {MOST} agents can run at once")),
        Ok(value) => Ok(value),
        Err(_) => Err(format!(
            "expected a whole number of parallel agents such as 3, not `{text}`"
        )),
    }
}
