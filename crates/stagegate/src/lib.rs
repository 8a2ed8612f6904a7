//! The `stagegate` command: parses arguments, resolves settings, wires the engine's events to
//! the recorder, the display and the `--json` printer, and maps outcomes to exit codes.

/// `println!` for data on stdout that never panics: a reader that went away (`| head`) is not
/// an error of ours, and a run must not die half-way over it.
macro_rules! stdout_line {
    ($($argument:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($argument)*);
    }};
}

/// `print!` for data on stdout that never panics (see `stdout_line!`).
macro_rules! stdout_text {
    ($($argument:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout().lock(), $($argument)*);
    }};
}

mod cli;
mod cluster;
mod commands;
mod editor;
mod effects;
mod error;
mod event_log;
mod gate_decision;
mod gitignore;
mod history;
mod input_file;
mod json_lines;
mod line_comments;
mod metric_names;
#[cfg(feature = "otel")]
mod otel_export;
mod output_style;
mod pager;
mod pending;
mod progress;
mod publication_preview;
mod recorder;
mod render;
mod run_lock;
mod run_log;
mod run_view;
mod runner;
mod scores;
mod serve;
mod session;
mod settings_summary;
mod stage_inputs;
mod subscribers;
mod terminal_gate;
mod terminal_text;
mod text_table;
mod workspace;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::error::{AppError, Exit};
use crate::output_style::{Stream, Tone};
use crate::runner::RunOptions;
use crate::session::Session;

/// The hidden first argument that makes stagegate an agent supervisor (see
/// `stagegate_engine::supervisor`): the engine re-executes this binary with it for every program
/// agent.
const SUPERVISE_MODE: &str = "__supervise";

/// Runs the command line and returns its exit code.
pub fn main() -> ExitCode {
    let mut args = std::env::args_os();
    if args.nth(1).is_some_and(|mode| mode == SUPERVISE_MODE) {
        // Before anything starts a thread: the supervisor blocks signals in its only thread.
        return stagegate_engine::supervisor::supervise(args);
    }
    install_supervisor();
    let cli = Cli::parse();
    let verbosity = output_style::Verbosity::from_args(cli.verbosity);
    output_style::set_verbosity(verbosity);
    install_error_style();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return Exit::Internal.into();
        }
    };
    if let Some(format) = cli.log_format {
        event_log::install(format, verbosity.default_log_filter());
    }
    let logs = cli.log_format.is_some();
    let outcome = runtime.block_on(async {
        let outcome = dispatch(cli.command, logs).await;
        session::close_stores(std::time::Duration::from_secs(5)).await;
        gate_decision::finish_prefetch();
        outcome
    });
    // Everything the command needed is done and awaited: tasks and connections still parked
    // (idle pool connections, finished writers) need no orderly goodbye before exit.
    runtime.shutdown_background();
    match outcome {
        Ok(exit) => exit.into(),
        Err(error) => {
            let exit = error.exit();
            report(error);
            exit.into()
        }
    }
}

/// Runs program agents under this very binary in its supervisor mode, so that an agent's whole
/// tree dies with the attempt and with stagegate. Without a path to this binary (it was deleted
/// while running) agents are spawned directly, and only their process group is contained.
fn install_supervisor() {
    if let Ok(program) = std::env::current_exe()
        && program.is_file()
    {
        stagegate_engine::supervisor::install_supervisor(
            stagegate_engine::supervisor::SupervisorCommand {
                program,
                args: vec![SUPERVISE_MODE.into()],
            },
        );
    }
}

/// How a command that may reach a gate talks to the person.
fn run_options(output: &cli::OutputArgs, logs: bool) -> RunOptions {
    RunOptions {
        no_input: output.no_input,
        json: output.json,
        refresh: false,
        logs,
    }
}

async fn dispatch(command: Command, logs: bool) -> Result<Exit, AppError> {
    match command {
        Command::Run(args) => {
            let session = Session::open(&args.common, args.concurrency).await?;
            let options = RunOptions {
                refresh: args.refresh,
                ..run_options(&args.output, logs)
            };
            runner::start_run(&session, &args.stages, options).await
        }
        Command::Approve(args) => {
            let session = Session::open(&args.common, None).await?;
            commands::approve::approve(&session, args.target.as_deref(), args.note).await
        }
        Command::Reject(args) => {
            let session = Session::open(&args.common, None).await?;
            commands::reject::reject(&session, args.run.as_deref(), args.reason).await
        }
        Command::Modify(args) => {
            // Without feedback or comments, modify opens $EDITOR: --no-input promises no prompt.
            if args.output.no_input && args.feedback.is_none() && args.comment.is_empty() {
                return Err(AppError::usage(
                    "modify --no-input needs --feedback TEXT or --comment: without them, modify opens $EDITOR on the staged artifacts\nhint: stagegate modify RUN --no-input --feedback \"what to change\", or leave out --no-input to edit them yourself",
                ));
            }
            let comments = args
                .comment
                .chunks(2)
                .map(|pair| Ok((line_comments::parse_target(&pair[0])?, pair[1].clone())))
                .collect::<Result<Vec<_>, AppError>>()?;
            let session = Session::open(&args.common, None).await?;
            let options = run_options(&args.output, logs);
            runner::modify_gate(
                &session,
                args.run.as_deref(),
                args.feedback,
                &comments,
                None,
                options,
            )
            .await
        }
        Command::Resume(args) => {
            let session = Session::open(&args.common, None).await?;
            let options = run_options(&args.output, logs);
            runner::resume_run(&session, &args.run, options).await
        }
        Command::Status(args) => {
            let session = Session::open_read_only(&args.common).await?;
            commands::status::status(&session, args.run.as_deref(), args.json).await
        }
        Command::Restore(args) => {
            let session = Session::open(&args.common, None).await?;
            commands::restore::restore(&session, &args.run, args.stage.as_deref(), args.force).await
        }
        Command::Unlock(args) => {
            let session = Session::open(&args.common, None).await?;
            commands::unlock::unlock(&session, &args.run, args.force).await
        }
        Command::Runs(args) => {
            let session = Session::open_read_only(&args.common).await?;
            commands::runs::runs(&session, args.json).await
        }
        Command::Show(args) => {
            let session = Session::open_read_only(&args.common).await?;
            if !session.has_state() {
                return Err(no_runs_yet(&args.run));
            }
            commands::show::show(&session, &args).await
        }
        Command::Report(args) => {
            let session = Session::open_read_only(&args.common).await?;
            if !session.has_state() {
                return Err(no_runs_yet(&args.run));
            }
            commands::report::report(&session, &args.run, &args.html).await
        }
        Command::Cache(args) => {
            let session = Session::open(&args.common, None).await?;
            commands::cache::cache(&session, args.action).await
        }
        Command::Serve(args) => {
            let session = Session::open(&args.common, None).await?;
            serve::serve(session, &args).await
        }
        Command::Worker(args) => {
            let session = Session::open_read_only(&args.common).await?;
            commands::worker::worker(&session, &args).await
        }
        Command::Init(args) => commands::init::init(args.force, args.speckit_extension),
        Command::Completions(args) => Ok(commands::completions::completions(args.shell)),
        Command::Man => commands::man_page::man_page(),
        Command::Metrics(args) => {
            let session = Session::open_read_only(&args.common).await?;
            commands::metrics::metrics(&session, args.format).await
        }
    }
}

/// `show RUN` or `report RUN` where nothing was ever recorded: RUN cannot exist. A usage error
/// (exit 2) as for any unknown run, so that `stagegate report RUN --html FILE && open FILE`
/// does not go on without a page.
fn no_runs_yet(run_id: &str) -> AppError {
    AppError::usage(format!(
        "no run {run_id}: no runs yet in this repository (there is no {})\nhint: `stagegate run plan` starts one",
        workspace::STATE_DIR
    ))
}

/// Prints an error once, at the top: with miette's snippet for configuration errors. A message
/// can quote an agent or a server (a stage's failure reasons), so it is redacted and its control
/// characters are neutralised; miette's own colours are added after.
fn report(error: AppError) {
    match error {
        AppError::Config(error) => {
            eprintln!("{:?}", miette::Report::new(error));
        }
        other => {
            let message = other.to_string();
            let message = stagegate_engine::secrets::redact(&message);
            let message = terminal_text::neutralise(&message);
            let error = output_style::paint(Stream::Stderr, Tone::Bad, "error:");
            let hint = output_style::paint(Stream::Stderr, Tone::Emphasis, "hint:");
            let message = message.replace("\nhint:", &format!("\n{hint}"));
            eprintln!("{error} {message}");
        }
    }
}

/// miette draws configuration errors: in colour exactly when stagegate's own words are (its
/// own detection knows neither `CLICOLOR` nor `CLICOLOR_FORCE`).
fn install_error_style() {
    let colour = output_style::colour_enabled(Stream::Stderr);
    let _ = miette::set_hook(Box::new(move |_| {
        Box::new(miette::MietteHandlerOpts::new().color(colour).build())
    }));
}
