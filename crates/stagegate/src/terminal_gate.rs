//! The gate at a terminal: a short summary (the artifacts with their sizes and what approval
//! does with each, QA's verdict), the seed's question, then approve / reject (with a reason) /
//! modify (in $EDITOR, or reworked by the synthesizer with feedback) / view, which shows one
//! artifact at a time through the pager, its diff against the published file first.
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
    pub artifacts: Vec<GateArtifact>,
    /// `approval creates …; REPLACES …`, when it does either.
    pub publication: Option<String>,
}

/// A staged artifact and the feature directory's file of the same name.
pub struct GateArtifact {
    pub name: String,
    pub content: String,
    pub published: Option<String>,
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
    let _ = write!(stderr, "\n{}", summary(view));
    let mut next_to_view = 0;
    loop {
        let view_choice = match view.artifacts.get(next_to_view) {
            Some(artifact) => format!(
                "view {} ({} of {}, the diff first)",
                neutralise(&artifact.name),
                next_to_view + 1,
                view.artifacts.len()
            ),
            None => "view the artifacts".to_owned(),
        };
        let choices = [
            "approve",
            "reject (give a reason)",
            "modify in $EDITOR",
            "modify with feedback (the synthesizer reworks it)",
            view_choice.as_str(),
            "decide later (stop here)",
        ];
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
                if let Some(artifact) = view.artifacts.get(next_to_view) {
                    crate::pager::page(&artifact_page(artifact));
                    next_to_view = (next_to_view + 1) % view.artifacts.len();
                }
            }
            Some(_) | None => return Ok(Decision::Stop),
        }
    }
}

/// What the gate says before its question: each artifact with its size and what approval
/// does with it, QA's verdict, and the files approval creates or replaces.
pub fn summary(view: &GateView<'_>) -> String {
    let mut out = format!("Staged for {} (run {}):\n", view.stage, view.run_id);
    let width = view
        .artifacts
        .iter()
        .map(|artifact| artifact.name.chars().count())
        .max()
        .unwrap_or(0);
    for artifact in &view.artifacts {
        let lines = artifact.content.lines().count();
        let effect = match artifact.published.as_deref() {
            None => "new".to_owned(),
            Some(published) if published == artifact.content => "unchanged".to_owned(),
            Some(published) => {
                let (added, removed) = line_changes(published, &artifact.content);
                format!("replaces the published file (+{added} −{removed} lines)")
            }
        };
        out.push_str(&format!(
            "  {:<width$}  {:>9}, {lines:>4} lines  {effect}\n",
            neutralise(&artifact.name),
            human_size(artifact.content.len()),
        ));
    }
    if view.verdict == Verdict::Rework {
        out.push_str(&format!(
            "QA asked for rework:\n{}\n",
            indent(&neutralise(view.qa_feedback))
        ));
    } else {
        out.push_str("QA: PASS\n");
    }
    if let Some(publication) = &view.publication {
        out.push_str(&format!("{}\n", publication.replace("RUN", view.run_id)));
    }
    out
}

/// One artifact as "view" pages it: a header, the diff against the published file (or that
/// there is none), then the content; all of it neutralised.
fn artifact_page(artifact: &GateArtifact) -> String {
    let mut out = format!("===== {} =====\n", artifact.name);
    match artifact.published.as_deref() {
        None => out.push_str("(new: the feature directory has no version of it yet)\n"),
        Some(published) if published == artifact.content => {
            out.push_str("(identical to the published version)\n");
        }
        Some(published) => {
            out.push_str("----- changes against the published version -----\n");
            out.push_str(&crate::gate_decision::artifact_diff(
                &artifact.name,
                published,
                &artifact.content,
            ));
        }
    }
    out.push_str(&format!("----- {} -----\n", artifact.name));
    out.push_str(&artifact.content);
    if !artifact.content.ends_with('\n') {
        out.push('\n');
    }
    neutralise(&out).into_owned()
}

fn line_changes(before: &str, after: &str) -> (usize, usize) {
    let diff = similar::TextDiff::from_lines(before, after);
    let (mut added, mut removed) = (0, 0);
    for change in diff.iter_all_changes() {
        match change.tag() {
            similar::ChangeTag::Insert => added += 1,
            similar::ChangeTag::Delete => removed += 1,
            similar::ChangeTag::Equal => {}
        }
    }
    (added, removed)
}

fn human_size(bytes: usize) -> String {
    if bytes < 1024 {
        format!("{bytes} B")
    } else {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn artifact(name: &str, content: &str, published: Option<&str>) -> GateArtifact {
        GateArtifact {
            name: name.to_owned(),
            content: content.to_owned(),
            published: published.map(str::to_owned),
        }
    }

    #[test]
    fn the_summary_lists_sizes_effects_the_verdict_and_the_publication() {
        let view = GateView {
            run_id: "r1",
            stage: "plan",
            question: "Approve?",
            verdict: Verdict::Rework,
            qa_feedback: "Fix \u{1b}[2J this",
            artifacts: vec![
                artifact("plan.md", "a\nb\n", Some("a\nc\n")),
                artifact("research.md", "x\n", None),
                artifact("data-model.md", "same\n", Some("same\n")),
            ],
            publication: Some(
                "approval creates research.md; REPLACES plan.md (`stagegate restore RUN`)"
                    .to_owned(),
            ),
        };
        let text = summary(&view);
        assert!(text.starts_with("Staged for plan (run r1):\n"), "{text}");
        assert!(
            text.contains(
                "  plan.md              4 B,    2 lines  replaces the published file (+1 −1 lines)\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("  research.md          2 B,    1 lines  new\n"),
            "{text}"
        );
        assert!(
            text.contains("data-model.md") && text.contains("unchanged"),
            "{text}"
        );
        assert!(
            text.contains("QA asked for rework:\n  Fix ␛[2J this"),
            "{text}"
        );
        assert!(text.contains("`stagegate restore r1`"), "{text}");
    }

    #[test]
    fn a_viewed_artifact_shows_its_diff_first_and_nothing_raw() {
        let page = artifact_page(&artifact(
            "plan.md",
            "a\nnew \u{1b}]0;x\u{7}\n",
            Some("a\nold\n"),
        ));
        let diff = page.find("-old").expect("the diff");
        let content = page.find("----- plan.md -----").expect("the content");
        assert!(diff < content, "{page}");
        assert!(page.contains("+new ␛]0;x␇"), "{page}");
        assert!(!page.contains('\u{1b}'), "{page}");
        assert!(
            artifact_page(&artifact("n.md", "x", None)).contains("(new: the feature directory")
        );
    }
}
