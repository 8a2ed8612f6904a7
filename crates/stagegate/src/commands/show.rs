//! `stagegate show RUN [--agent ID] [--attempt N] [--file prompt|output|stderr]`
//!
//! The listing quotes failure reasons, so its control characters are always neutralised
//! (`terminal_text`). A file is written as the agent wrote it when stdout is a pipe or a file
//! (`show --file output > plan.md`, `| diff`), and neutralised when stdout is a terminal, where
//! its bytes would otherwise act on the terminal (clipboard, title, screen).

use std::fmt::Write as _;

use crate::cli::{ShowArgs, ShowFile};
use stagegate_store::TextKind;

use crate::error::{AppError, Exit};
use crate::history::attempt_key;
use crate::runner::find_run;
use crate::session::Session;
use crate::terminal_text::{neutralise, neutralise_bytes};

pub async fn show(session: &Session, args: &ShowArgs) -> Result<Exit, AppError> {
    let run = find_run(session, &args.run).await?;
    let attempts = session.store.attempts(&run.id).await?;
    let Some(agent) = &args.agent else {
        let mut out = String::new();
        for attempt in &attempts {
            let _ = writeln!(
                out,
                "{:<9} {:<9} {:<40} attempt {} {}{}",
                attempt.stage,
                attempt.phase,
                attempt.agent,
                attempt.attempt,
                attempt.outcome.as_deref().unwrap_or("running"),
                attempt
                    .failure_reason
                    .as_deref()
                    .map(|reason| format!(" ({reason})"))
                    .unwrap_or_default()
            );
        }
        stdout_text!("{}", neutralise(&out));
        return Ok(Exit::Done);
    };
    let chosen = attempts
        .iter()
        .filter(|attempt| &attempt.agent == agent)
        .filter(|attempt| {
            args.stage
                .as_ref()
                .is_none_or(|stage| &attempt.stage == stage)
        })
        .filter(|attempt| args.attempt.is_none_or(|number| attempt.attempt == number))
        .max_by_key(|attempt| (attempt.started_at_ms, attempt.attempt))
        .ok_or_else(|| {
            AppError::usage(format!(
                "run {} has no attempt of {agent}{}\nhint: `stagegate show {}` lists every attempt",
                run.id,
                args.attempt
                    .map(|number| format!(" numbered {number}"))
                    .unwrap_or_default(),
                run.id
            ))
        })?;
    let (kind, what) = match args.file {
        ShowFile::Prompt => (TextKind::Prompt, "prompt"),
        ShowFile::Output => (TextKind::Output, "output"),
        ShowFile::Stderr => (TextKind::Stderr, "stderr"),
    };
    let Some(bytes) = session
        .store
        .attempt_text(&attempt_key(chosen), kind)
        .await?
    else {
        return Err(AppError::usage(format!(
            "{}'s attempt {} in stage {} of run {} recorded no {what}",
            chosen.agent, chosen.attempt, chosen.stage, run.id
        )));
    };
    use std::io::{IsTerminal, Write};
    let mut stdout = std::io::stdout().lock();
    let _ = if stdout.is_terminal() {
        stdout.write_all(neutralise_bytes(&bytes).as_bytes())
    } else {
        stdout.write_all(&bytes)
    };
    Ok(Exit::Done)
}
