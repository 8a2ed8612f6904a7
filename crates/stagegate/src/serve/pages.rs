//! The dashboard's HTML: server-rendered, every text escaped, readable without JavaScript.
//! The run page reuses the report's sections (attempts, QA verdicts, decisions) and adds the
//! pending gate: its question, the staged artifacts with their diff against the feature
//! directory, and the three decision forms.

use std::fmt::Write as _;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use stagegate_engine::envelope::Envelope;
use stagegate_engine::event::Event;
use stagegate_store::{
    AttemptRecord, DecisionRecord, GateRecord, GateState, LineCommentRecord, RunRecord,
};

use crate::commands::report::{
    STYLE, attempt_table, decision_list, escape, verdicts_and_adjustments,
};
use crate::render::artifact_view::{self, ArtifactView, Versions};
use crate::render::{REVIEW_STYLE, markdown_html, templates};

use super::Dashboard;
use super::routes::Refusal;

/// How many of the run's latest events the page lists before the live stream takes over.
const RECENT_EVENTS: usize = 30;

/// An HTML response that is never cached, never framed and never sends the URL (with its
/// token) as a referrer.
pub fn html(page: String) -> Response {
    let mut response = ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    response
}

/// `/runs/<id>?token=...`
pub fn run_link(run_id: &str, token: &str) -> String {
    format!("/runs/{}?token={token}", path_segment(run_id))
}

/// Percent-encodes everything but unreserved characters (run ids are plain, but a link must
/// never break on one that is not).
fn path_segment(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            encoded.push(char::from(byte));
        } else {
            let _ = write!(encoded, "%{byte:02X}");
        }
    }
    encoded
}

fn layout(title: &str, token: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"referrer\" content=\"no-referrer\"><title>{title}</title>\
         <style>{STYLE}{EXTRA_STYLE}{REVIEW_STYLE}</style></head><body>\n\
         <nav><a href=\"/?token={token}\">runs</a> · <a href=\"/metrics?token={token}\">metrics</a></nav>\n\
         {body}</body></html>\n",
        title = escape(title),
        token = escape(token),
    )
}

const EXTRA_STYLE: &str = "nav{margin-bottom:1em}form{margin:.5em 0;padding:.5em;border:1px solid #ddd}\
textarea{width:100%;min-height:4em}pre{white-space:pre-wrap}.question{font-size:120%}";

/// `/`: every run, and the gates waiting for a decision.
pub fn index(runs: &[RunRecord], pending: &[GateRecord], token: &str) -> String {
    let mut body = String::from("<h1>stagegate runs</h1>\n");
    if pending.is_empty() {
        body.push_str("<p>No gate is waiting for a decision.</p>\n");
    } else {
        body.push_str("<h2>Waiting for a decision</h2>\n<ul>\n");
        for gate in pending {
            let _ = writeln!(
                body,
                "<li><a href=\"{}\">run {}</a> at the <b>{}</b> gate: {} (since {})</li>",
                escape(&run_link(&gate.run_id, token)),
                escape(&gate.run_id),
                escape(&gate.stage),
                escape(&gate.question),
                when(gate.opened_at_ms)
            );
        }
        body.push_str("</ul>\n");
    }
    body.push_str("<h2>Runs</h2>\n");
    if runs.is_empty() {
        body.push_str("<p>No runs yet: <code>stagegate run plan</code> starts one.</p>\n");
        return layout("stagegate runs", token, &body);
    }
    body.push_str(
        "<table><tr><th>run</th><th>stages</th><th>state</th><th>stage</th><th>feature</th><th>started</th><th>updated</th></tr>\n",
    );
    for run in runs {
        let _ = writeln!(
            body,
            "<tr><td><a href=\"{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&run_link(&run.id, token)),
            escape(&run.id),
            escape(&run.stages.join(" → ")),
            escape(run.state.as_str()),
            escape(run.current_stage.as_deref().unwrap_or("-")),
            escape(&run.feature_dir),
            when(run.created_at_ms),
            when(run.updated_at_ms)
        );
    }
    body.push_str("</table>\n");
    layout("stagegate runs", token, &body)
}

/// Everything the run page shows, read from the store and the run's directory.
pub struct RunView {
    run: RunRecord,
    attempts: Vec<AttemptRecord>,
    events: Vec<Envelope>,
    decisions: Vec<DecisionRecord>,
    comments: Vec<LineCommentRecord>,
    gates: Vec<GateRecord>,
    pending: Option<PendingGate>,
    token: String,
}

/// The gate waiting for a decision, with what the person decides on.
struct PendingGate {
    gate: GateRecord,
    artifacts: Vec<ArtifactView>,
    /// `approval creates …; replaces …`, when it does either.
    publication: Option<String>,
    /// The last QA verdict of the stage: PASS or REWORK, and its feedback (markdown).
    qa: Option<(&'static str, String)>,
    /// The reviewer's `## Conflicts` section (markdown), when it has one.
    conflicts: Option<String>,
    csrf: String,
}

impl RunView {
    pub async fn load(dashboard: &Dashboard, run: RunRecord) -> Result<Self, Refusal> {
        let session = &dashboard.session;
        let store = &session.store;
        let mut gates = Vec::new();
        for stage in &run.stages {
            if let Some(gate) = store.gate(&run.id, stage).await? {
                gates.push(gate);
            }
        }
        let attempts = store.attempts(&run.id).await?;
        let events = crate::run_log::read(store, &run.id).await?;
        let comments = store.line_comments(&run.id).await?;
        let pending = match gates.iter().find(|gate| gate.state == GateState::Pending) {
            Some(gate) => Some(PendingGate {
                csrf: dashboard.token.csrf(&run.id, &gate.stage),
                qa: last_verdict(&events, &gate.stage),
                conflicts: review_conflicts(store, &attempts, &gate.stage).await,
                ..pending_artifacts(dashboard, &run, gate, &comments)?
            }),
            None => None,
        };
        Ok(RunView {
            attempts,
            events,
            decisions: store.decisions(&run.id).await?,
            comments,
            gates,
            pending,
            token: dashboard.token.as_str().to_owned(),
            run,
        })
    }
}

/// The staged artifacts of `gate` with their diffs and the answers to the previous round's
/// comments, and what approving them publishes.
fn pending_artifacts(
    dashboard: &Dashboard,
    run: &RunRecord,
    gate: &GateRecord,
    comments: &[LineCommentRecord],
) -> Result<PendingGate, Refusal> {
    let session = &dashboard.session;
    let feature = session.feature_of_run(&run.feature_dir);
    let run_dir = session.store.run_dir(&run.id);
    let staged = run_dir
        .staged_artifacts(&gate.stage)
        .map_err(crate::error::AppError::from)?;
    let previous_round = gate.round.checked_sub(1).filter(|round| *round > 0);
    let mut artifacts = Vec::with_capacity(staged.len());
    for (name, path) in &staged {
        let content = read_text(path);
        let published = std::fs::read(feature.dir.join(name))
            .ok()
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned());
        let previous = previous_round.and_then(|round| {
            std::fs::read(run_dir.round_dir(&gate.stage, round).join(name))
                .ok()
                .map(|bytes| (round, String::from_utf8_lossy(&bytes).into_owned()))
        });
        let on_previous: Vec<&stagegate_store::LineComment> = comments
            .iter()
            .filter(|record| {
                record.stage == gate.stage
                    && Some(record.round) == previous_round
                    && record.comment.artifact == *name
            })
            .map(|record| &record.comment)
            .collect();
        let published_path = format!("{}/{name}", run.feature_dir);
        artifacts.push(artifact_view::view(
            &Versions {
                name,
                staged: &content,
                published: published.as_deref(),
                previous_round: previous
                    .as_ref()
                    .map(|(round, text)| (*round, text.as_str())),
                published_path: &published_path,
            },
            &on_previous,
        ));
    }
    let changes = crate::publication_preview::preview(&staged, &feature.dir);
    Ok(PendingGate {
        gate: gate.clone(),
        artifacts,
        publication: crate::publication_preview::describe(&changes),
        qa: None,
        conflicts: None,
        csrf: String::new(),
    })
}

/// The stage's last QA verdict, from the run's log.
fn last_verdict(events: &[Envelope], stage: &str) -> Option<(&'static str, String)> {
    events
        .iter()
        .rev()
        .find_map(|envelope| match &envelope.event {
            Event::QaVerdict {
                stage: of,
                verdict,
                feedback,
                ..
            } if of == stage => Some((
                match verdict {
                    stagegate_engine::event::Verdict::Pass => "PASS",
                    stagegate_engine::event::Verdict::Rework => "REWORK",
                },
                feedback.clone(),
            )),
            _ => None,
        })
}

/// The `## Conflicts` section of the stage's last successful review.
async fn review_conflicts(
    store: &stagegate_store::Store,
    attempts: &[AttemptRecord],
    stage: &str,
) -> Option<String> {
    let review = attempts.iter().rev().find(|attempt| {
        attempt.stage == stage
            && attempt.phase == "review"
            && matches!(attempt.outcome.as_deref(), Some("ok" | "cached"))
    })?;
    let output = store
        .attempt_text(
            &crate::history::attempt_key(review),
            stagegate_store::TextKind::Output,
        )
        .await
        .ok()??;
    markdown_section(&String::from_utf8_lossy(&output), "Conflicts")
}

/// The body of the `## HEADING` section of `markdown` (to the next heading of that level).
fn markdown_section(markdown: &str, heading: &str) -> Option<String> {
    let mut lines = markdown.lines();
    lines.find(|line| line.trim_start_matches('#').trim() == heading && line.starts_with("## "))?;
    let body: Vec<&str> = lines
        .take_while(|line| !(line.starts_with("## ") || line.starts_with("# ")))
        .collect();
    let body = body.join("\n");
    (!body.trim().is_empty()).then_some(body)
}

fn read_text(path: &std::path::Path) -> String {
    match std::fs::read(path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(error) => format!("(cannot read {}: {error})", path.display()),
    }
}

/// `/runs/<id>`
pub fn run(view: &RunView) -> String {
    let run = &view.run;
    let mut body = String::new();
    let _ = writeln!(
        body,
        "<h1>Run {}</h1>\n<p>Feature <code>{}</code> · state <b>{}</b> · started {} · updated {}</p>",
        escape(&run.id),
        escape(&run.feature_dir),
        escape(run.state.as_str()),
        when(run.created_at_ms),
        when(run.updated_at_ms)
    );
    body.push_str(&stages(view));
    if let Some(pending) = &view.pending {
        body.push_str(&gate_section(run, pending, &view.token));
    }
    body.push_str(&attempt_table(&view.attempts));
    body.push_str(&verdicts_and_adjustments(&view.events));
    body.push_str(&decision_list(&view.decisions, &view.comments));
    body.push_str(&live_section(run, &view.events, &view.token));
    layout(&format!("stagegate run {}", run.id), &view.token, &body)
}

fn stages(view: &RunView) -> String {
    let run = &view.run;
    let mut html = String::from("<h2>Stages</h2>\n<ol>\n");
    for stage in &run.stages {
        let gate = view.gates.iter().find(|gate| &gate.stage == stage);
        let state = match gate.map(|gate| gate.state) {
            Some(GateState::Approved) => "approved",
            Some(GateState::Rejected) => "rejected",
            Some(GateState::Superseded) => "superseded by a newer run",
            Some(GateState::Pending) => "waiting at the gate",
            None if run.current_stage.as_deref() == Some(stage) => run.state.as_str(),
            None => "not started",
        };
        let _ = writeln!(html, "<li><b>{}</b>: {}</li>", escape(stage), escape(state));
    }
    html.push_str("</ol>\n");
    html
}

/// The question, what the person decides on (QA's verdict, the reviewer's conflicts, what
/// approval publishes), the three decision forms, and the staged artifacts: rendered, as
/// numbered source to comment on, and their diffs.
fn gate_section(run: &RunRecord, pending: &PendingGate, token: &str) -> String {
    let stage = &pending.gate.stage;
    let mut html = format!(
        "<h2 id=\"gate\">Gate: {}</h2>\n<p class=\"question\">{}</p>\n",
        escape(stage),
        escape(&pending.gate.question)
    );
    html.push_str(&gate_summary(pending));
    let action = |decision: &str| escape(&format!("/runs/{}/{decision}", path_segment(&run.id)));
    let hidden = format!(
        "<input type=\"hidden\" name=\"token\" value=\"{}\"><input type=\"hidden\" name=\"csrf\" value=\"{}\"><input type=\"hidden\" name=\"stage\" value=\"{}\"><input type=\"hidden\" name=\"round\" value=\"{}\">",
        escape(token),
        escape(&pending.csrf),
        escape(stage),
        pending.gate.round
    );
    let _ = write!(
        html,
        "<form id=\"approve\" method=\"post\" action=\"{approve}\">{hidden}\
         <label>Note (optional) <input name=\"note\" size=\"60\"></label> \
         <button type=\"submit\">Approve and publish</button></form>\n\
         <form id=\"reject\" method=\"post\" action=\"{reject}\">{hidden}\
         <label>Reason (required)<textarea name=\"reason\" required></textarea></label>\
         <button type=\"submit\">Reject</button></form>\n\
         <form id=\"modify\" method=\"post\" action=\"{modify}\">{hidden}\
         <input type=\"hidden\" name=\"comments\" id=\"comments-field\" value=\"[]\">\
         <label>Feedback for the synthesizer (feedback or line comments are required; the artifacts are reworked and checked by QA again)\
         <textarea name=\"feedback\"></textarea></label>\
         <div id=\"pending-comments\"><p class=\"none\">No line comments: click a line number in an artifact's source to add one.</p><ol></ol></div>\
         <button type=\"submit\">Rework</button></form>\n",
        approve = action("approve"),
        reject = action("reject"),
        modify = action("modify"),
    );
    html.push_str("<p>The staged artifacts, as they would be published:</p>\n");
    let rendered = templates::render(
        "artifacts.html",
        serde_json::json!({ "artifacts": &pending.artifacts, "commenting": true }),
    );
    match rendered {
        Ok(artifacts) => html.push_str(&artifacts),
        Err(error) => {
            let _ = writeln!(
                html,
                "<p class=\"error\">{}</p>",
                escape(&error.to_string())
            );
        }
    }
    let _ = writeln!(
        html,
        "<noscript><style>.views table.source{{display:table!important}}</style></noscript><script>{}</script>",
        include_str!("line_comments.js")
    );
    html
}

/// What approval publishes, QA's verdict and the reviewer's conflicts, rendered.
fn gate_summary(pending: &PendingGate) -> String {
    let mut html = String::from("<div class=\"summary\">");
    match &pending.publication {
        Some(publication) => {
            let _ = writeln!(
                html,
                "<p class=\"publication\"><b>{}</b></p>",
                escape(publication)
            );
        }
        None => html.push_str("<p class=\"publication\">Approval changes no file.</p>"),
    }
    if let Some((verdict, feedback)) = &pending.qa {
        let _ = write!(
            html,
            "<details class=\"qa\" open><summary>QA verdict: <b>{verdict}</b></summary><div class=\"markdown\">{}</div></details>",
            markdown_html::render(feedback)
        );
    }
    if let Some(conflicts) = &pending.conflicts {
        let _ = write!(
            html,
            "<details class=\"conflicts\" open><summary>The reviewer's conflicts</summary><div class=\"markdown\">{}</div></details>",
            markdown_html::render(conflicts)
        );
    }
    html.push_str("</div>\n");
    html
}

/// The run's latest events, followed live when scripts run (the stream starts after the last
/// one listed, so nothing is shown twice).
fn live_section(run: &RunRecord, envelopes: &[Envelope], token: &str) -> String {
    let last = envelopes.last().map_or(0, |envelope| envelope.seq);
    let stream = format!(
        "/runs/{}/events?token={token}&after={last}",
        path_segment(&run.id)
    );
    let mut html = format!(
        "<h2>Events</h2>\n<p>The latest {RECENT_EVENTS}; new ones appear here as the run goes on (reload without JavaScript).</p>\n<ol id=\"live\" data-stream=\"{}\">\n",
        escape(&stream)
    );
    for envelope in envelopes
        .iter()
        .skip(envelopes.len().saturating_sub(RECENT_EVENTS))
    {
        let _ = writeln!(
            html,
            "<li value=\"{}\">{} {}</li>",
            envelope.seq,
            escape(envelope.event.kind()),
            escape(&event_subject(&envelope.event))
        );
    }
    html.push_str("</ol>\n");
    html.push_str(LIVE_SCRIPT);
    html
}

/// What an event is about: its stage and, for a call, the phase and agent (the same words the
/// script writes for live events).
fn event_subject(event: &Event) -> String {
    let words: [&str; 3] = match event {
        Event::AttemptStarted { identity, .. }
        | Event::AttemptFinished { identity, .. }
        | Event::CacheHit { identity, .. }
        | Event::RetryScheduled { identity, .. }
        | Event::AnswerTruncated { identity, .. }
        | Event::ReasoningStripped { identity, .. } => {
            [&identity.stage, identity.phase.as_str(), &identity.agent]
        }
        Event::ContextCut {
            stage,
            phase,
            agent,
            ..
        } => [stage, phase.as_str(), agent],
        Event::FallbackStarted { stage, agent, .. } => [stage, "", agent],
        Event::StageStarted { stage, .. }
        | Event::InputsScored { stage, .. }
        | Event::Adjusted { stage, .. }
        | Event::QuorumMet { stage, .. }
        | Event::QuorumLost { stage, .. }
        | Event::SequentialPassStarted { stage, .. }
        | Event::AgentsFinished { stage, .. }
        | Event::ArtifactSynthesized { stage, .. }
        | Event::QaVerdict { stage, .. }
        | Event::GateRequested { stage, .. }
        | Event::GateWaiting { stage, .. }
        | Event::GateDecided { stage, .. }
        | Event::StageFinished { stage, .. } => [stage, "", ""],
        Event::RunStarted { .. } | Event::RunFinished { .. } | Event::Unknown => ["", "", ""],
    };
    words
        .into_iter()
        .filter(|word| !word.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Appends each streamed event to the list (text only: nothing from the stream becomes HTML).
const LIVE_SCRIPT: &str = r#"<script>
(function () {
  var list = document.getElementById("live");
  if (!list || !window.EventSource) { return; }
  var source = new EventSource(list.getAttribute("data-stream"));
  source.onmessage = function (message) {
    var event = JSON.parse(message.data);
    var payload = event.payload || {};
    var identity = payload.identity || {};
    var words = [event.kind];
    ["stage", "phase", "agent"].forEach(function (key) {
      var value = payload[key] || identity[key];
      if (typeof value === "string" && value) { words.push(value); }
    });
    var item = document.createElement("li");
    item.value = event.seq;
    item.textContent = words.join(" ");
    list.appendChild(item);
  };
})();
</script>
"#;

fn when(at_ms: i64) -> String {
    let Ok(millis) = u64::try_from(at_ms) else {
        return "-".to_owned();
    };
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_millis(millis);
    humantime::format_rfc3339_seconds(time).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use stagegate_store::RunState;

    fn run_record(id: &str) -> RunRecord {
        RunRecord {
            id: id.into(),
            feature_dir: "specs/001-<x>".into(),
            stages: vec!["plan".into()],
            state: RunState::AwaitingDecision,
            current_stage: Some("plan".into()),
            settings_json: serde_json::json!({}),
            created_at_ms: 0,
            updated_at_ms: 0,
        }
    }

    #[test]
    fn links_carry_the_token_and_encode_the_run_id() {
        assert_eq!(run_link("2026-x", "abc"), "/runs/2026-x?token=abc");
        assert_eq!(run_link("a/b c", "abc"), "/runs/a%2Fb%20c?token=abc");
    }

    #[test]
    fn the_index_escapes_what_it_shows() {
        let gate = GateRecord {
            run_id: "r1".into(),
            stage: "plan".into(),
            question: "Approve <this>?".into(),
            artifacts: vec![],
            state: GateState::Pending,
            round: 1,
            opened_at_ms: 0,
            closed_at_ms: None,
        };
        let page = index(&[run_record("r1")], &[gate], "tok");
        assert!(page.contains("Approve &lt;this&gt;?"));
        assert!(page.contains("specs/001-&lt;x&gt;"));
        assert!(page.contains("href=\"/runs/r1?token=tok\""));
        assert!(!page.contains("<script"), "the index needs no script");
    }

    #[test]
    fn the_gate_section_has_three_forms_with_token_csrf_and_stage() {
        let pending = PendingGate {
            gate: GateRecord {
                run_id: "r1".into(),
                stage: "plan".into(),
                question: "Planning artifacts synthesized. Approve to proceed?".into(),
                artifacts: vec!["plan.md".into()],
                state: GateState::Pending,
                round: 1,
                opened_at_ms: 0,
                closed_at_ms: None,
            },
            artifacts: vec![
                artifact_view::view(
                    &Versions {
                        name: "plan.md",
                        staged: "# Plan <script>alert(1)</script>\n\n| a | b |\n|---|---|\n| 1 | 2 |\n",
                        published: None,
                        previous_round: None,
                        published_path: "specs/001-<x>/plan.md",
                    },
                    &[],
                ),
                artifact_view::view(
                    &Versions {
                        name: "research.md",
                        staged: "new <b>\n",
                        published: Some("old\n"),
                        previous_round: None,
                        published_path: "specs/001-<x>/research.md",
                    },
                    &[],
                ),
            ],
            publication: Some("approval creates plan.md".into()),
            qa: Some(("PASS", "All **good**.".into())),
            conflicts: None,
            csrf: "c5rf".into(),
        };
        let html = gate_section(&run_record("r1"), &pending, "tok");
        assert_eq!(html.matches("<form ").count(), 3);
        assert_eq!(html.matches("name=\"csrf\" value=\"c5rf\"").count(), 3);
        assert_eq!(html.matches("name=\"token\" value=\"tok\"").count(), 3);
        assert!(html.contains("action=\"/runs/r1/approve\""));
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(!html.contains("<script>alert"));
        assert!(html.contains("<td>1</td>"), "the table is rendered: {html}");
        assert!(html.contains("QA verdict: <b>PASS</b>") && html.contains("<strong>good</strong>"));
        assert!(html.contains("new: approval creates it"));
        // minijinja escapes `/` too.
        assert!(
            html.contains("changes against specs&#x2f;001-&lt;x&gt;&#x2f;research.md"),
            "{html}"
        );
        assert!(
            html.contains("<tr class=\"delete\"><td class=\"ln\">1</td><td class=\"ln\"></td><td class=\"sign\">−</td><td class=\"text\">old</td>"),
            "{html}"
        );
        assert!(
            html.contains("<td class=\"text\">new &lt;b&gt;</td>"),
            "{html}"
        );
        let publication = html
            .find("approval creates plan.md")
            .expect("publication stated");
        assert!(publication < html.find("<form id=\"approve\"").expect("approve form"));
        assert!(
            html.find("<form id=\"approve\"") < html.find("<h3>plan.md "),
            "the decision comes before the long artifacts"
        );
    }

    #[test]
    fn an_event_is_summarized_by_stage_phase_and_agent() {
        let identity = stagegate_engine::backend::CallIdentity {
            run_id: "r1".into(),
            stage: "plan".into(),
            phase: stagegate_engine::backend::Phase::Agent,
            agent: "solution-architect".into(),
            attempt: 1,
            artifact: None,
        };
        let started = Event::AttemptStarted {
            identity,
            backend: "mock".into(),
            at_ms: 1,
            prompt: std::sync::Arc::default(),
            prompt_joints: std::sync::Arc::default(),
        };
        assert_eq!(event_subject(&started), "plan agent solution-architect");
        let fallback = Event::FallbackStarted {
            run_id: "r1".into(),
            stage: "plan".into(),
            agent: "a".into(),
            from: "claude".into(),
            to: "codex".into(),
            at_ms: 2,
        };
        assert_eq!(event_subject(&fallback), "plan a");
        let quorum = Event::QuorumLost {
            run_id: "r1".into(),
            stage: "plan".into(),
            reason: "none".into(),
            at_ms: 3,
        };
        assert_eq!(event_subject(&quorum), "plan");
        assert_eq!(event_subject(&Event::Unknown), "");
    }
}
