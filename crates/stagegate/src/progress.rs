//! What the person sees while a run goes: a live line per running agent in a terminal, plain
//! lines for the notable events elsewhere, nothing with `--json` or `STAGEGATE_NO_PROGRESS`.
//! Everything goes to stderr; stdout is for data.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use stagegate_engine::backend::Phase;
use stagegate_engine::event::{AttemptStatus, Event, StageEnd, Verdict};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    /// A live line per running agent (stderr is a terminal).
    Live,
    /// One plain line per notable event.
    Plain,
    Off,
}

impl ProgressMode {
    /// Live in a terminal, plain lines otherwise, off with `--json` or `STAGEGATE_NO_PROGRESS`.
    pub fn detect(json: bool) -> Self {
        let disabled = std::env::var_os("STAGEGATE_NO_PROGRESS").is_some_and(|value| value != "0");
        if json || disabled {
            ProgressMode::Off
        } else if std::io::stderr().is_terminal() {
            ProgressMode::Live
        } else {
            ProgressMode::Plain
        }
    }
}

pub struct Progress {
    mode: ProgressMode,
    multi: MultiProgress,
    running: HashMap<String, ProgressBar>,
    style: ProgressStyle,
}

impl Progress {
    pub fn new(mode: ProgressMode) -> Self {
        let multi = MultiProgress::with_draw_target(match mode {
            ProgressMode::Live => ProgressDrawTarget::stderr(),
            _ => ProgressDrawTarget::hidden(),
        });
        let style = ProgressStyle::with_template("  {spinner} {msg} {elapsed:>4}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        Progress {
            mode,
            multi,
            running: HashMap::new(),
            style,
        }
    }

    /// Prints a line above the live bars (or plainly), unless progress is off. Lines quote
    /// agents (failure reasons), so their control characters are neutralised first.
    pub fn line(&self, text: &str) {
        let text = crate::terminal_text::neutralise(text);
        match self.mode {
            ProgressMode::Live => {
                let _ = self.multi.println(text);
            }
            ProgressMode::Plain => {
                let _ = writeln!(std::io::stderr(), "{text}");
            }
            ProgressMode::Off => {}
        }
    }

    /// Removes every live line, before a prompt takes the terminal.
    pub fn clear(&mut self) {
        for (_, bar) in self.running.drain() {
            bar.finish_and_clear();
        }
        let _ = self.multi.clear();
    }

    pub fn show(&mut self, event: &Event) {
        if self.mode == ProgressMode::Off {
            return;
        }
        match event {
            Event::StageStarted {
                stage,
                name,
                agents,
                concurrency,
                quorum_needed,
                ..
            } => self.line(&format!(
                "{name} ({stage}): {} agents, {concurrency} at once, {quorum_needed} must succeed",
                agents.len()
            )),
            Event::AttemptStarted {
                identity, backend, ..
            } if self.mode == ProgressMode::Live => {
                let bar = self.multi.add(ProgressBar::new_spinner());
                bar.set_style(self.style.clone());
                bar.set_message(format!(
                    "{:<9} {} (attempt {}, {backend})",
                    identity.phase.as_str(),
                    label(
                        identity.phase,
                        &identity.agent,
                        identity.artifact.as_deref()
                    ),
                    identity.attempt
                ));
                bar.enable_steady_tick(Duration::from_millis(120));
                self.running.insert(key(identity), bar);
            }
            Event::AttemptFinished {
                identity,
                status,
                failure,
                duration_ms,
                ..
            } => {
                if let Some(bar) = self.running.remove(&key(identity)) {
                    bar.finish_and_clear();
                }
                let what = label(
                    identity.phase,
                    &identity.agent,
                    identity.artifact.as_deref(),
                );
                let seconds = *duration_ms as f64 / 1000.0;
                let text = match (status, failure) {
                    (AttemptStatus::Ok, _) => {
                        format!("  ✓ {:<9} {what} ({seconds:.1}s)", identity.phase.as_str())
                    }
                    (_, Some(failure)) => format!(
                        "  ✗ {:<9} {what} attempt {}: {failure} ({seconds:.1}s)",
                        identity.phase.as_str(),
                        identity.attempt
                    ),
                    (status, None) => format!(
                        "  ✗ {:<9} {what} attempt {}: {}",
                        identity.phase.as_str(),
                        identity.attempt,
                        status.as_str()
                    ),
                };
                self.line(&text);
            }
            Event::ContextCut { agent, cuts, .. } => {
                self.line(&format!("  context of {agent} cut: {}", cuts.join("; ")));
            }
            Event::AnswerTruncated {
                identity,
                cuts,
                handling,
                ..
            } => {
                let what = label(
                    identity.phase,
                    &identity.agent,
                    identity.artifact.as_deref(),
                );
                self.line(&format!(
                    "  ✂ {what}: answer cut at the output-token limit ({cuts}×), {}",
                    handling.describe()
                ));
            }
            Event::InputsScored {
                complexity,
                uncertainty,
                ..
            } => self.line(&format!(
                "  inputs: complexity {complexity}/100, uncertainty {uncertainty}/100"
            )),
            Event::Adjusted {
                setting,
                from,
                to,
                reason,
                ..
            } => self.line(&format!("  adjusted {setting} {from} → {to}: {reason}")),
            Event::CacheHit { identity, .. } => self.line(&format!(
                "  ✓ {:<9} {} (cached)",
                identity.phase.as_str(),
                label(
                    identity.phase,
                    &identity.agent,
                    identity.artifact.as_deref()
                )
            )),
            Event::RetryScheduled {
                identity, delay_ms, ..
            } => self.line(&format!(
                "  ↻ {} retries in {:.1}s",
                identity.agent,
                *delay_ms as f64 / 1000.0
            )),
            Event::FallbackStarted {
                agent, from, to, ..
            } => self.line(&format!("  ↪ {agent}: {from} failed, trying fallback {to}")),
            Event::QuorumMet {
                succeeded,
                needed,
                total,
                ..
            } => self.line(&format!(
                "  quorum met: {succeeded} of {total} succeeded ({needed} needed)"
            )),
            Event::QuorumLost { reason, .. } => self.line(&format!("  quorum lost: {reason}")),
            Event::SequentialPassStarted { agents, .. } => self.line(&format!(
                "  below quorum: retrying {} one at a time",
                agents.join(", ")
            )),
            Event::QaVerdict {
                verdict, iteration, ..
            } => self.line(&format!(
                "  QA (round {iteration}): {}",
                match verdict {
                    Verdict::Pass => "PASS",
                    Verdict::Rework => "REWORK",
                }
            )),
            Event::StageFinished {
                stage, end, reason, ..
            } => {
                let reason = reason
                    .as_deref()
                    .map(|reason| format!(": {reason}"))
                    .unwrap_or_default();
                let end = match end {
                    StageEnd::Approved => "approved",
                    StageEnd::Rejected => "rejected",
                    StageEnd::AwaitingDecision => "waiting for a decision",
                    StageEnd::Failed => "failed",
                    StageEnd::Interrupted => "interrupted",
                };
                self.line(&format!("{stage}: {end}{reason}"));
            }
            _ => {}
        }
    }
}

fn key(identity: &stagegate_engine::backend::CallIdentity) -> String {
    format!(
        "{}/{}/{}/{}",
        identity.phase.as_str(),
        identity.agent,
        identity.artifact.as_deref().unwrap_or(""),
        identity.attempt
    )
}

fn label(phase: Phase, agent: &str, artifact: Option<&str>) -> String {
    match (phase, artifact) {
        (Phase::Synthesis, Some(artifact)) => format!("{artifact} by {agent}"),
        _ => agent.to_owned(),
    }
}
