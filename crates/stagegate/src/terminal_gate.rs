//! The gate at a terminal: the seed's question, then approve / reject (with a reason) /
//! modify (in $EDITOR, or reworked by the synthesizer with feedback) / view.
//!
//! QA's feedback and the artifacts are agents' text: their control characters are neutralised
//! before they reach the terminal (`terminal_text`).

use std::io::{IsTerminal, Write};

use dialoguer::{Input, Select};
use stagegate_engine::event::Verdict;

use crate::terminal_text::neutralise;

/// What the person chose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Reject {
        reason: String,
    },
    /// Edit the staged artifacts in $EDITOR.
    Edit,
    /// Send the artifacts back to the synthesizer with this feedback.
    Rework {
        feedback: String,
    },
    /// No decision now: stop at the gate (exit 10).
    Stop,
}

/// What the gate shows.
pub struct GateView<'a> {
    pub run_id: &'a str,
    pub stage: &'a str,
    pub question: &'a str,
    pub verdict: Verdict,
    pub qa_feedback: &'a str,
    /// `(name, content)` of every staged artifact.
    pub artifacts: Vec<(String, String)>,
}

/// Whether a person can be asked: a terminal on both stdin and stderr, and `--no-input` not given.
pub fn can_prompt(no_input: bool) -> bool {
    !no_input && std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// Asks until the person approves, rejects, modifies, or stops.
pub fn ask(view: &GateView<'_>) -> Decision {
    match ask_until_decided(view) {
        Ok(decision) => decision,
        Err(PromptStopped(why)) => {
            eprintln!("\nthe gate prompt stopped ({why}); the gate stays pending");
            Decision::Stop
        }
    }
}

fn ask_until_decided(view: &GateView<'_>) -> Result<Decision, PromptStopped> {
    let mut stderr = std::io::stderr();
    let _ = writeln!(stderr);
    let names: Vec<&str> = view
        .artifacts
        .iter()
        .map(|(name, _)| name.as_str())
        .collect();
    let _ = writeln!(
        stderr,
        "Staged for {} (run {}): {}",
        view.stage,
        view.run_id,
        neutralise(&names.join(", "))
    );
    if view.verdict == Verdict::Rework {
        let _ = writeln!(
            stderr,
            "QA asked for rework:\n{}",
            indent(&neutralise(view.qa_feedback))
        );
    } else {
        let _ = writeln!(stderr, "QA: PASS");
    }
    let choices = [
        "approve",
        "reject (give a reason)",
        "modify in $EDITOR",
        "modify with feedback (the synthesizer reworks it)",
        "view the artifacts",
        "decide later (stop here)",
    ];
    loop {
        // The seed's question, exactly: dialoguer's own prompt line would add a colon to it.
        let _ = writeln!(stderr, "{}", view.question);
        let choice = Select::new()
            .items(choices)
            .default(0)
            .interact_opt()
            .map_err(prompt_error)?;
        match choice {
            Some(0) => return Ok(Decision::Approve),
            Some(1) => {
                let reason: String = Input::new()
                    .with_prompt("Reason for rejecting")
                    .validate_with(|text: &String| {
                        if text.trim().is_empty() {
                            Err("a reason is required")
                        } else {
                            Ok(())
                        }
                    })
                    .interact_text()
                    .map_err(prompt_error)?;
                return Ok(Decision::Reject { reason });
            }
            Some(2) => return Ok(Decision::Edit),
            Some(3) => {
                let feedback: String = Input::new()
                    .with_prompt("Feedback for the synthesizer")
                    .interact_text()
                    .map_err(prompt_error)?;
                if !feedback.trim().is_empty() {
                    return Ok(Decision::Rework { feedback });
                }
            }
            Some(4) => {
                for (name, content) in &view.artifacts {
                    let _ = writeln!(
                        stderr,
                        "\n===== {} =====\n{}",
                        neutralise(name),
                        neutralise(content)
                    );
                }
            }
            Some(_) | None => return Ok(Decision::Stop),
        }
    }
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|line| format!("  {line}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A prompt that cannot go on (Ctrl-C, the terminal went away) leaves the gate pending: the
/// decision can still be taken later, so nothing is lost by stopping.
fn prompt_error(error: dialoguer::Error) -> PromptStopped {
    // dialoguer hides the cursor while a choice is shown and leaves it hidden when Ctrl-C ends
    // the prompt.
    show_cursor();
    PromptStopped(error.to_string())
}

/// Shows the terminal's cursor again (ANSI `CSI ?25h`), when stderr is a terminal.
pub fn show_cursor() {
    let mut stderr = std::io::stderr();
    if stderr.is_terminal() {
        let _ = stderr.write_all(b"\x1b[?25h");
        let _ = stderr.flush();
    }
}

struct PromptStopped(String);
