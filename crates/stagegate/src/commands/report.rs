//! `stagegate report RUN --html FILE`: one self-contained HTML page about a run, readable
//! without JavaScript: the stages, every attempt on an SVG timeline (a bar per attempt from
//! start to end, coloured by outcome; retries and cache hits visible), QA verdicts, decisions
//! with reasons and diffs, the resolved settings and adaptive adjustments, and the metrics.

use std::fmt::Write as _;
use std::path::Path;

use stagegate_engine::envelope::Envelope;
use stagegate_engine::event::{Event, Verdict};
use stagegate_store::{AttemptRecord, DecisionRecord, LineCommentRecord, RunRecord, atomic_write};

use crate::error::{AppError, Exit};
use crate::output_style::info_line;
use crate::render::artifact_view::{self, ArtifactView, Versions};
use crate::render::{REVIEW_STYLE, diff_html, markdown_html, templates};
use crate::runner::find_run_with_settings;
use crate::session::Session;

pub async fn report(session: &Session, run_id: &str, html: &Path) -> Result<Exit, AppError> {
    // The page shows the settings the run ran with.
    let run = find_run_with_settings(session, run_id).await?;
    let store = &session.store;
    let attempts = store.attempts(&run.id).await?;
    let envelopes = crate::run_log::read(store, &run.id).await?;
    let decisions = store.decisions(&run.id).await?;
    let mut metrics = crate::commands::metrics::compute(
        std::slice::from_ref(&run),
        &attempts,
        &envelopes,
        &decisions,
    );
    crate::commands::metrics::add_costs(&mut metrics, &attempts, &session.settings.prices);
    let metrics_json =
        serde_json::to_string_pretty(&crate::commands::metrics::render_json(&metrics))
            .unwrap_or_default();
    let comments = store.line_comments(&run.id).await?;
    let artifacts = last_round_artifacts(store, &run, &comments).await?;
    let page = render(
        &run,
        &attempts,
        &envelopes,
        &Reviewed {
            decisions: &decisions,
            comments: &comments,
            artifacts: &artifacts,
        },
        &metrics_json,
    );
    let path = session.cwd.join(html);
    atomic_write(&path, page.as_bytes())
        .map_err(|error| AppError::internal(format!("cannot write {}: {error}", path.display())))?;
    info_line!("wrote {}", path.display());
    Ok(Exit::Done)
}

/// Each stage's staged artifacts as its last round left them, with the change since the round
/// before and the answers to that round's comments.
async fn last_round_artifacts(
    store: &stagegate_store::Store,
    run: &RunRecord,
    comments: &[LineCommentRecord],
) -> Result<Vec<(String, Vec<ArtifactView>)>, AppError> {
    let run_dir = store.run_dir(&run.id);
    let mut stages = Vec::new();
    for stage in &run.stages {
        let Some(gate) = store.gate(&run.id, stage).await? else {
            continue;
        };
        let previous_round = gate.round.checked_sub(1).filter(|round| *round > 0);
        let mut views = Vec::new();
        for (name, path) in run_dir.staged_artifacts(stage).unwrap_or_default() {
            let read = |path: &Path| {
                std::fs::read(path)
                    .ok()
                    .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            };
            let content = read(&path).unwrap_or_default();
            let previous = previous_round.and_then(|round| {
                read(&run_dir.round_dir(stage, round).join(&name)).map(|text| (round, text))
            });
            let on_previous: Vec<&stagegate_store::LineComment> = comments
                .iter()
                .filter(|record| {
                    record.stage == *stage
                        && Some(record.round) == previous_round
                        && record.comment.artifact == name
                })
                .map(|record| &record.comment)
                .collect();
            let published_path = format!("{}/{name}", run.feature_dir);
            views.push(artifact_view::view(
                &Versions {
                    name: &name,
                    staged: &content,
                    // The report is about the run, not about today's feature directory.
                    published: None,
                    previous_round: previous
                        .as_ref()
                        .map(|(round, text)| (*round, text.as_str())),
                    published_path: &published_path,
                },
                &on_previous,
            ));
        }
        if !views.is_empty() {
            stages.push((stage.clone(), views));
        }
    }
    Ok(stages)
}

fn artifact_sections(stages: &[(String, Vec<ArtifactView>)]) -> String {
    let mut html = String::new();
    for (stage, artifacts) in stages {
        let _ = writeln!(html, "<h2>Artifacts of {}</h2>", escape(stage));
        match templates::render(
            "artifacts.html",
            serde_json::json!({ "artifacts": artifacts, "commenting": false }),
        ) {
            Ok(rendered) => html.push_str(&rendered),
            Err(error) => {
                let _ = writeln!(html, "<p>{}</p>", escape(&error.to_string()));
            }
        }
    }
    html
}

/// The people's side of a run: decisions and their line comments, and the artifacts of each
/// stage's last round that they decided on.
pub struct Reviewed<'a> {
    pub decisions: &'a [DecisionRecord],
    pub comments: &'a [LineCommentRecord],
    pub artifacts: &'a [(String, Vec<ArtifactView>)],
}

/// The whole page.
pub fn render(
    run: &RunRecord,
    attempts: &[AttemptRecord],
    envelopes: &[Envelope],
    reviewed: &Reviewed<'_>,
    metrics_json: &str,
) -> String {
    let mut page = String::new();
    let _ = write!(
        page,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>stagegate run {id}</title><style>{STYLE}{REVIEW_STYLE}</style></head><body>\n\
         <h1>Run {id}</h1>\n<p>Feature <code>{feature}</code> · stages {stages} · state <b>{state}</b></p>\n",
        id = escape(&run.id),
        feature = escape(&run.feature_dir),
        stages = escape(&run.stages.join(" → ")),
        state = escape(run.state.as_str()),
    );
    page.push_str("<h2>Timeline</h2>\n");
    page.push_str(&timeline(attempts, envelopes, reviewed.decisions));
    page.push_str(&legend());
    page.push_str(&attempt_table(attempts));
    page.push_str(&verdicts_and_adjustments(envelopes));
    page.push_str(&decision_list(reviewed.decisions, reviewed.comments));
    page.push_str(&artifact_sections(reviewed.artifacts));
    let _ = write!(
        page,
        "<h2>Settings</h2>\n<pre>{}</pre>\n<h2>Metrics</h2>\n<pre>{}</pre>\n</body></html>\n",
        escape(&serde_json::to_string_pretty(&run.settings_json).unwrap_or_default()),
        escape(metrics_json)
    );
    page
}

pub(crate) const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}\
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:2px 8px;text-align:left;font-size:90%}\
pre{background:#f6f6f6;padding:1em;overflow:auto;font-size:85%}code{background:#f6f6f6}\
.ok{color:#1a7f37}.failed,.timed_out{color:#cf222e}.cached{color:#0969da}\
.legend span{display:inline-block;margin-right:1em}.legend i{display:inline-block;width:1em;height:1em;margin-right:.3em;vertical-align:middle}";

fn colour(outcome: Option<&str>) -> &'static str {
    match outcome {
        Some("ok") => "#2da44e",
        Some("cached") => "#0969da",
        Some("timed_out") => "#d4a72c",
        Some("failed") => "#cf222e",
        Some("cancelled") => "#8c959f",
        _ => "#6e7781",
    }
}

pub(crate) fn legend() -> String {
    let mut legend = String::from("<p class=\"legend\">");
    for outcome in ["ok", "cached", "failed", "timed_out", "cancelled"] {
        let _ = write!(
            legend,
            "<span><i style=\"background:{}\"></i>{outcome}</span>",
            colour(Some(outcome))
        );
    }
    legend.push_str("</p>\n");
    legend
}

/// The attempts of one stage between two of its decisions.
struct Segment<'a> {
    stage: &'a str,
    round: u32,
    attempts: Vec<&'a AttemptRecord>,
}

/// The timeline per stage and round, each on its own scale (a round of agents takes seconds,
/// a person's answer can take a day); the wait for the person between them is a break with
/// its length written out, not drawn as time. A round ends where the stage's gate was
/// requested (`gate_requested` in the log); a rework's calls start the next round.
pub(crate) fn timeline(
    attempts: &[AttemptRecord],
    envelopes: &[Envelope],
    decisions: &[DecisionRecord],
) -> String {
    if attempts.is_empty() {
        return "<p>No attempts were recorded.</p>\n".to_owned();
    }
    let gate_requests = |stage: &str| -> Vec<i64> {
        let mut times: Vec<i64> = envelopes
            .iter()
            .filter_map(|envelope| match &envelope.event {
                Event::GateRequested {
                    stage: of, at_ms, ..
                } if of == stage => Some(*at_ms),
                _ => None,
            })
            .collect();
        times.sort_unstable();
        times
    };
    let mut segments: Vec<Segment<'_>> = Vec::new();
    for attempt in attempts {
        let round = 1 + gate_requests(&attempt.stage)
            .iter()
            .filter(|at| **at <= attempt.started_at_ms)
            .count() as u32;
        match segments
            .iter_mut()
            .find(|segment| segment.stage == attempt.stage && segment.round == round)
        {
            Some(segment) => segment.attempts.push(attempt),
            None => segments.push(Segment {
                stage: &attempt.stage,
                round,
                attempts: vec![attempt],
            }),
        }
    }
    let mut html = String::new();
    for segment in &segments {
        let start = segment
            .attempts
            .iter()
            .map(|attempt| attempt.started_at_ms)
            .min()
            .unwrap_or(0);
        let end = segment
            .attempts
            .iter()
            .map(|attempt| attempt.finished_at_ms.unwrap_or(attempt.started_at_ms))
            .max()
            .unwrap_or(start);
        let _ = writeln!(
            html,
            "<h3 class=\"segment\">{} · round {} · {}</h3>",
            escape(segment.stage),
            segment.round,
            duration((end - start).max(0))
        );
        html.push_str(&timeline_svg(&segment.attempts));
        // The person's turn: from the gate's request to their answer (the rework's first call,
        // or the decision).
        let Some(opened) = gate_requests(segment.stage)
            .get(segment.round as usize - 1)
            .copied()
        else {
            continue;
        };
        // Each round of a stage is answered by one decision: a modification, or the last one.
        let Some(decision) = decisions
            .iter()
            .filter(|decision| decision.stage == segment.stage)
            .nth(segment.round as usize - 1)
        else {
            let _ = writeln!(html, "<p class=\"break\">⋯ waiting for a person ⋯</p>");
            continue;
        };
        let rework_began = segments
            .iter()
            .filter(|next| next.stage == segment.stage && next.round == segment.round + 1)
            .flat_map(|next| next.attempts.iter().map(|attempt| attempt.started_at_ms))
            .min();
        let answered = rework_began.map_or(decision.decided_at_ms, |began| {
            began.min(decision.decided_at_ms)
        });
        let _ = writeln!(
            html,
            "<p class=\"break\">⋯ waited {} for a person ⋯ then <b>{}</b> by {}</p>",
            duration((answered - opened).max(0)),
            escape(decision.kind.as_str()),
            escape(&decision.decided_by)
        );
    }
    html
}

/// `850 ms`, `12.3 s`, `4 min 10 s`, `2 h 5 min`.
fn duration(millis: i64) -> String {
    let seconds = millis / 1000;
    if millis < 1000 {
        format!("{millis} ms")
    } else if seconds < 60 {
        format!("{:.1} s", millis as f64 / 1000.0)
    } else if seconds < 3600 {
        format!("{} min {} s", seconds / 60, seconds % 60)
    } else {
        format!("{} h {} min", seconds / 3600, seconds % 3600 / 60)
    }
}

/// An SVG with a row per attempt; x is time since the first attempt started.
fn timeline_svg(attempts: &[&AttemptRecord]) -> String {
    if attempts.is_empty() {
        return "<p>No attempts were recorded.</p>\n".to_owned();
    }
    let start = attempts.iter().map(|a| a.started_at_ms).min().unwrap_or(0);
    let end = attempts
        .iter()
        .map(|a| a.finished_at_ms.unwrap_or(a.started_at_ms))
        .max()
        .unwrap_or(start)
        .max(start + 1);
    let span = (end - start) as f64;
    let (label_width, bar_width, row) = (330.0, 820.0, 18.0);
    let height = row * attempts.len() as f64 + 30.0;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{height}\" role=\"img\" aria-label=\"attempt timeline\">\n",
        label_width + bar_width + 10.0
    );
    for (index, attempt) in attempts.iter().enumerate() {
        let y = index as f64 * row + 4.0;
        let x = label_width + (attempt.started_at_ms - start) as f64 / span * bar_width;
        let finished = attempt.finished_at_ms.unwrap_or(attempt.started_at_ms);
        let width = ((finished - attempt.started_at_ms) as f64 / span * bar_width).max(2.0);
        let label = format!(
            "{} {} {} #{}",
            attempt.stage, attempt.phase, attempt.agent, attempt.attempt
        );
        let tooltip = format!(
            "{label}: {} in {} ms{}",
            attempt.outcome.as_deref().unwrap_or("running"),
            finished - attempt.started_at_ms,
            attempt
                .failure_reason
                .as_deref()
                .map(|reason| format!(" ({reason})"))
                .unwrap_or_default()
        );
        let _ = writeln!(
            svg,
            "<text x=\"0\" y=\"{}\" font-size=\"11\">{}</text><rect x=\"{x:.1}\" y=\"{y}\" width=\"{width:.1}\" height=\"{}\" fill=\"{}\"><title>{}</title></rect>",
            y + 11.0,
            escape(&label),
            row - 4.0,
            colour(attempt.outcome.as_deref()),
            escape(&tooltip)
        );
    }
    let _ = writeln!(
        svg,
        "<text x=\"{label_width}\" y=\"{}\" font-size=\"11\">0 s</text><text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"end\">{:.1} s</text></svg>",
        height - 4.0,
        label_width + bar_width,
        height - 4.0,
        span / 1000.0
    );
    svg
}

pub(crate) fn attempt_table(attempts: &[AttemptRecord]) -> String {
    let mut table = String::from(
        "<h2>Attempts</h2>\n<table><tr><th>stage</th><th>phase</th><th>agent</th><th>attempt</th><th>backend</th><th>outcome</th><th>ms</th><th>bytes</th><th>confidence</th><th>failure</th></tr>\n",
    );
    for attempt in attempts {
        let outcome = attempt.outcome.as_deref().unwrap_or("running");
        let _ = writeln!(
            table,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"{outcome}\">{outcome}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&attempt.stage),
            escape(&attempt.phase),
            escape(&attempt.agent),
            attempt.attempt,
            escape(&attempt.backend),
            attempt
                .finished_at_ms
                .map(|end| (end - attempt.started_at_ms).to_string())
                .unwrap_or_default(),
            attempt
                .output_bytes
                .map(|b| b.to_string())
                .unwrap_or_default(),
            attempt
                .confidence
                .map(|c| format!("{c:.2}"))
                .unwrap_or_default(),
            escape(attempt.failure_reason.as_deref().unwrap_or("")),
        );
    }
    table.push_str("</table>\n");
    table
}

pub(crate) fn verdicts_and_adjustments(envelopes: &[Envelope]) -> String {
    let mut html = String::from("<h2>QA verdicts and adjustments</h2>\n<ul>\n");
    for envelope in envelopes {
        let event = &envelope.event;
        match event {
            Event::QaVerdict {
                stage,
                iteration,
                verdict,
                feedback,
                ..
            } => {
                let verdict = match verdict {
                    Verdict::Pass => "PASS",
                    Verdict::Rework => "REWORK",
                };
                let _ = writeln!(
                    html,
                    "<li>{} QA round {iteration}: <b>{verdict}</b><div class=\"markdown\">{}</div></li>",
                    escape(stage),
                    markdown_html::render(feedback)
                );
            }
            Event::Adjusted {
                stage,
                setting,
                from,
                to,
                reason,
                ..
            } => {
                let _ = writeln!(
                    html,
                    "<li>{} adjusted {} {} → {}: {}</li>",
                    escape(stage),
                    escape(setting),
                    escape(from),
                    escape(to),
                    escape(reason)
                );
            }
            Event::QuorumLost { stage, .. }
            | Event::SequentialPassStarted { stage, .. }
            | Event::FallbackStarted { stage, .. } => {
                // The whole event, as the log keeps it.
                let payload = serde_json::to_value(event).unwrap_or_default();
                let _ = writeln!(
                    html,
                    "<li>{} {}: {}</li>",
                    escape(stage),
                    escape(&event.kind().replace('_', " ")),
                    escape(&payload.to_string())
                );
            }
            _ => {}
        }
    }
    html.push_str("</ul>\n");
    html
}

/// The decisions, each with its line comments and the change it made, through the shared
/// template.
pub(crate) fn decision_list(
    decisions: &[DecisionRecord],
    comments: &[LineCommentRecord],
) -> String {
    let decisions: Vec<serde_json::Value> = decisions
        .iter()
        .map(|decision| {
            let comments: Vec<serde_json::Value> = comments
                .iter()
                .filter(|comment| Some(comment.decision_id) == decision.id)
                .map(|comment| {
                    serde_json::json!({
                        "location": crate::line_comments::location(&comment.comment),
                        "round": comment.round,
                        "quoted": comment.comment.quoted,
                        "comment": comment.comment.comment,
                    })
                })
                .collect();
            serde_json::json!({
                "stage": decision.stage,
                "kind": decision.kind.as_str(),
                "by": decision.decided_by,
                "text": decision.reason.as_deref().or(decision.note.as_deref()).unwrap_or(""),
                "comments": comments,
                "diff": decision.diff.as_deref().map(diff_html::unified_rows).unwrap_or_default(),
            })
        })
        .collect();
    templates::render(
        "decisions.html",
        serde_json::json!({ "decisions": decisions }),
    )
    .unwrap_or_else(|error| format!("<p>{}</p>\n", escape(&error.to_string())))
}

pub(crate) fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            other => escaped.push(other),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;
    use stagegate_store::{DecisionKind, RunState};

    fn attempt(agent: &str, attempt: u32, outcome: &str, start: i64, end: i64) -> AttemptRecord {
        AttemptRecord {
            run_id: "r".into(),
            stage: "plan".into(),
            phase: "agent".into(),
            agent: agent.into(),
            attempt,
            backend: "fake".into(),
            started_at_ms: start,
            finished_at_ms: Some(end),
            outcome: Some(outcome.into()),
            failure_reason: (outcome != "ok" && outcome != "cached").then(|| "boom <x>".into()),
            output_hash: None,
            output_bytes: Some(10),
            confidence: Some(0.5),
            input_tokens: None,
            output_tokens: None,
            cost_usd: None,
        }
    }

    fn envelope(seq: i64, event: Event) -> Envelope {
        Envelope {
            version: 1,
            run_id: "r".into(),
            seq,
            at_ms: seq,
            event,
        }
    }

    #[test]
    fn verdicts_adjustments_and_quorum_news_are_listed_in_log_order() {
        let log = [
            envelope(
                1,
                Event::Adjusted {
                    run_id: "r".into(),
                    stage: "plan".into(),
                    setting: "concurrency".into(),
                    from: "3".into(),
                    to: "1".into(),
                    reason: "complexity <high>".into(),
                    at_ms: 1,
                },
            ),
            envelope(
                2,
                Event::QuorumLost {
                    run_id: "r".into(),
                    stage: "plan".into(),
                    reason: "2 of 3 failed".into(),
                    at_ms: 2,
                },
            ),
            envelope(3, Event::Unknown),
            envelope(
                4,
                Event::QaVerdict {
                    run_id: "r".into(),
                    stage: "plan".into(),
                    iteration: 2,
                    verdict: Verdict::Rework,
                    feedback: "missing <risks>".into(),
                    at_ms: 4,
                },
            ),
        ];
        let html = verdicts_and_adjustments(&log);
        assert_eq!(
            html,
            "<h2>QA verdicts and adjustments</h2>\n<ul>\n\
             <li>plan adjusted concurrency 3 → 1: complexity &lt;high&gt;</li>\n\
             <li>plan quorum lost: {&quot;at_ms&quot;:2,&quot;event&quot;:&quot;quorum_lost&quot;,&quot;reason&quot;:&quot;2 of 3 failed&quot;,&quot;run_id&quot;:&quot;r&quot;,&quot;stage&quot;:&quot;plan&quot;}</li>\n\
             <li>plan QA round 2: <b>REWORK</b><div class=\"markdown\"><p>missing &lt;risks&gt;</p>\n</div></li>\n\
             </ul>\n"
        );
    }

    #[test]
    fn the_page_shows_retries_timeouts_cache_hits_and_a_rejection() {
        let run = RunRecord {
            id: "r".into(),
            feature_dir: "specs/001-x".into(),
            stages: vec!["plan".into()],
            state: RunState::Rejected,
            current_stage: Some("plan".into()),
            settings_json: serde_json::json!({"defaults": {"concurrency": 3}}),
            created_at_ms: 0,
            updated_at_ms: 0,
        };
        let attempts = vec![
            attempt("a", 1, "failed", 0, 100),
            attempt("a", 2, "ok", 1100, 1200),
            attempt("b", 1, "timed_out", 0, 3000),
            attempt("c", 1, "cached", 50, 50),
        ];
        let decisions = vec![DecisionRecord {
            id: Some(1),
            run_id: "r".into(),
            stage: "plan".into(),
            kind: DecisionKind::Reject,
            reason: Some("too vague".into()),
            note: None,
            diff: None,
            decided_by: "me".into(),
            decided_at_ms: 5000,
        }];
        let reviewed = Reviewed {
            decisions: &decisions,
            comments: &[],
            artifacts: &[],
        };
        let opened = [envelope(
            1,
            Event::GateRequested {
                run_id: "r".into(),
                stage: "plan".into(),
                question: "?".into(),
                artifacts: vec![],
                at_ms: 3000,
            },
        )];
        let page = render(&run, &attempts, &opened, &reviewed, "{}");
        assert!(page.contains("<svg"), "a timeline");
        assert_eq!(page.matches("<rect ").count(), 4, "a bar per attempt");
        assert!(
            page.contains("plan agent a #2"),
            "the retry has its own bar"
        );
        assert!(page.contains(colour(Some("timed_out"))));
        assert!(page.contains(colour(Some("cached"))));
        assert!(page.contains("<b>reject</b> by me: too vague"));
        assert!(page.contains("boom &lt;x&gt;"), "text is escaped");
        assert!(!page.contains("<script"), "readable without JavaScript");
        assert!(page.contains("plan · round 1 · 3.0 s"), "{page}");
        assert!(page.contains("⋯ waited 2.0 s for a person ⋯ then <b>reject</b> by me"));
    }

    #[test]
    fn each_round_has_its_own_scale_and_the_persons_wait_is_a_break() {
        let hour = 3_600_000;
        let attempts = vec![
            attempt("a", 1, "ok", 0, 2000),
            attempt("a", 2, "ok", 2000, 4000),
            // The rework, a day later; its modification is recorded once it is done.
            attempt("s", 1, "ok", 24 * hour + 4000, 24 * hour + 5000),
        ];
        let requested = |seq, at_ms| {
            envelope(
                seq,
                Event::GateRequested {
                    run_id: "r".into(),
                    stage: "plan".into(),
                    question: "?".into(),
                    artifacts: vec![],
                    at_ms,
                },
            )
        };
        let log = [requested(1, 4000), requested(2, 24 * hour + 5000)];
        let decision = |kind, at| DecisionRecord {
            id: Some(1),
            run_id: "r".into(),
            stage: "plan".into(),
            kind,
            reason: None,
            note: None,
            diff: None,
            decided_by: "me".into(),
            decided_at_ms: at,
        };
        let decisions = vec![
            decision(DecisionKind::Modify, 24 * hour + 5000),
            decision(DecisionKind::Approve, 24 * hour + 65_000),
        ];
        let html = timeline(&attempts, &log, &decisions);
        assert_eq!(html.matches("<svg").count(), 2, "{html}");
        assert!(html.contains("plan · round 1 · 4.0 s"), "{html}");
        assert!(
            html.contains("waited 24 h 0 min for a person ⋯ then <b>modify</b>"),
            "{html}"
        );
        assert!(html.contains("plan · round 2 · 1.0 s"), "{html}");
        assert!(
            html.contains("waited 1 min 0 s for a person ⋯ then <b>approve</b>"),
            "{html}"
        );
        // Round 2's one bar spans its whole scale, not a pixel of a day.
        assert!(html.contains("width=\"820.0\""), "{html}");
    }
}
