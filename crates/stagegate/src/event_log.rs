//! Structured logs: `--log-format text|json` turns every event of a run into a log record on
//! stderr, with the run, stage, phase, agent and attempt as fields (the "spans" a log reader
//! filters on), at a level that says how it went. `STAGEGATE_LOG` (or `RUST_LOG`) selects the
//! levels, like `info` or `stagegate=debug`; the default is `info`, `warn` with `-q`, `debug`
//! with `-v` and `trace` with `-vv`.
//!
//! Logs are another subscriber of the one event stream, beside the recorder and the display;
//! with logs on, the live display is off so the two do not interleave on stderr.

use clap::ValueEnum;
use stagegate_engine::event::{AttemptStatus, Event, EventSink, SinkError};
use tracing::Level;
use tracing_subscriber::EnvFilter;

/// `--log-format`
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Installs the global log subscriber writing to stderr. `STAGEGATE_LOG` or `RUST_LOG` choose
/// the levels; without them `default_filter` (from `-q`/`-v`) does.
pub fn install(format: LogFormat, default_filter: &str) {
    let filter = std::env::var("STAGEGATE_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .and_then(|directives| EnvFilter::try_new(directives).ok())
        .unwrap_or_else(|| EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(false);
    // A subscriber already installed (tests) is fine: keep it.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// Turns events into log records.
#[derive(Debug, Default)]
pub struct EventLog;

impl EventSink for EventLog {
    async fn emit(&mut self, event: &Event) -> Result<(), SinkError> {
        log(event);
        Ok(())
    }
}

fn log(event: &Event) {
    let kind = event.kind();
    let payload = serde_json::to_string(event).unwrap_or_default();
    match event {
        Event::AttemptStarted { identity, .. }
        | Event::AttemptFinished { identity, .. }
        | Event::CacheHit { identity, .. }
        | Event::RetryScheduled { identity, .. } => {
            let level = match event {
                Event::AttemptFinished { status, .. } if *status != AttemptStatus::Ok => {
                    Level::WARN
                }
                Event::AttemptStarted { .. } => Level::DEBUG,
                _ => Level::INFO,
            };
            emit_at(
                level,
                kind,
                &identity.run_id,
                &identity.stage,
                identity.phase.as_str(),
                &identity.agent,
                identity.attempt,
                &payload,
            );
        }
        other => {
            let level = match other {
                Event::QuorumLost { .. } | Event::SequentialPassStarted { .. } => Level::WARN,
                Event::StageFinished {
                    reason: Some(_), ..
                } => Level::WARN,
                _ => Level::INFO,
            };
            let run_id = crate::recorder::run_id_of(other);
            let stage = stage_of(&payload);
            emit_at(level, kind, run_id, &stage, "", "", 0, &payload);
        }
    }
}

fn stage_of(payload: &str) -> String {
    serde_json::from_str::<serde_json::Value>(payload)
        .ok()
        .and_then(|value| value.get("stage")?.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// `tracing`'s macros need the level as a constant, hence one arm per level.
#[expect(clippy::too_many_arguments, reason = "the fields of one log record")]
fn emit_at(
    level: Level,
    kind: &str,
    run_id: &str,
    stage: &str,
    phase: &str,
    agent: &str,
    attempt: u32,
    payload: &str,
) {
    macro_rules! record {
        ($level:expr) => {
            tracing::event!(
                $level,
                event = kind,
                run_id,
                stage,
                phase,
                agent,
                attempt,
                payload,
                "{kind}"
            )
        };
    }
    match level {
        Level::ERROR => record!(Level::ERROR),
        Level::WARN => record!(Level::WARN),
        Level::DEBUG => record!(Level::DEBUG),
        Level::TRACE => record!(Level::TRACE),
        _ => record!(Level::INFO),
    }
}
