//! The routes, and the checks every request passes before a handler acts: the token on every
//! request, and for a decision also the page's CSRF value, a gate that is still pending, and
//! the text the decision needs. A refused request records nothing.

use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::FormRejection;
use axum::extract::{DefaultBodyLimit, Form, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use stagegate_engine::event::{Event, EventSink, StageEnd, now_ms};
use stagegate_store::{RunRecord, RunState};

use stagegate_run::Verb;

use crate::error::AppError;
use crate::gate_decision::{self, Ask, Place};
use crate::line_comments::{CommentTarget, parse_target};
use crate::recorder::Recorder;
use crate::runner::{self, RunOptions};
use crate::session::Session;
use crate::workspace::Feature;

use super::Dashboard;
use super::pages;

/// The largest request body accepted: a decision is a few form fields and a note.
pub(super) const BODY_LIMIT: usize = 64 * 1024;

/// The header a script or `curl` can present the token in, instead of the `token` parameter.
pub const TOKEN_HEADER: &str = "x-stagegate-token";

pub fn router(dashboard: Arc<Dashboard>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/metrics", get(metrics))
        .route("/runs/{id}", get(run_page))
        .route("/runs/{id}/events", get(super::live::events))
        .route("/runs/{id}/approve", post(approve))
        .route("/runs/{id}/reject", post(reject))
        .route("/runs/{id}/modify", post(modify))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(dashboard)
}

/// Why a request was refused: a status and a short message (plain text).
#[derive(Debug)]
pub struct Refusal {
    status: StatusCode,
    message: String,
}

impl Refusal {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Refusal {
            status,
            message: message.into(),
        }
    }

    fn forbidden_token() -> Self {
        Refusal::new(
            StatusCode::FORBIDDEN,
            "missing or wrong token: open the URL `stagegate serve` printed (it ends in ?token=...)",
        )
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        Refusal::new(StatusCode::NOT_FOUND, what)
    }

    fn internal(error: &AppError) -> Self {
        Refusal::new(StatusCode::INTERNAL_SERVER_ERROR, error.to_string())
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut response = (self.status, format!("{}\n", self.message)).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

impl From<AppError> for Refusal {
    fn from(error: AppError) -> Self {
        Refusal::internal(&error)
    }
}

impl From<stagegate_store::StoreError> for Refusal {
    fn from(error: stagegate_store::StoreError) -> Self {
        Refusal::internal(&AppError::from(error))
    }
}

#[derive(Debug, Default, Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

/// The token as a request presents it: the header, else the `token` query parameter.
fn presented_token(parts: &Parts) -> Option<String> {
    if let Some(value) = parts.headers.get(TOKEN_HEADER) {
        return value.to_str().ok().map(str::to_owned);
    }
    Query::<TokenQuery>::try_from_uri(&parts.uri)
        .ok()
        .and_then(|Query(query)| query.token)
}

/// A request that presented the session token (header or `?token=`); refused with 403
/// otherwise.
pub struct Authorized;

impl FromRequestParts<Arc<Dashboard>> for Authorized {
    type Rejection = Refusal;

    async fn from_request_parts(
        parts: &mut Parts,
        dashboard: &Arc<Dashboard>,
    ) -> Result<Self, Self::Rejection> {
        let presented = presented_token(parts);
        if dashboard.token.matches(presented.as_deref()) {
            Ok(Authorized)
        } else {
            Err(Refusal::forbidden_token())
        }
    }
}

/// The run named in the path, or 404.
pub async fn known_run(
    dashboard: &Dashboard,
    id: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<RunRecord, Refusal> {
    let Ok(Path(id)) = id else {
        return Err(Refusal::not_found("no such run"));
    };
    dashboard
        .session
        .store
        .run(&id)
        .await?
        .ok_or_else(|| Refusal::not_found(format!("no run {id} in this repository")))
}

async fn not_found() -> Refusal {
    Refusal::not_found("no such page: the dashboard is at / (with ?token=...)")
}

async fn index(
    State(dashboard): State<Arc<Dashboard>>,
    _: Authorized,
) -> Result<Response, Refusal> {
    let store = &dashboard.session.store;
    let mut runs = store.runs().await?;
    mark_interrupted(&dashboard, &mut runs).await?;
    let pending = store.pending_gates().await?;
    Ok(pages::html(pages::index(
        &runs,
        &pending,
        dashboard.token.as_str(),
    )))
}

/// A run recorded as running whose process is gone was interrupted (as `stagegate status`
/// shows it).
async fn mark_interrupted(dashboard: &Dashboard, runs: &mut [RunRecord]) -> Result<(), Refusal> {
    let locks = dashboard.session.store.locks().await?;
    for run in runs.iter_mut().filter(|run| run.state == RunState::Running) {
        let alive = locks
            .iter()
            .any(|lock| lock.run_id == run.id && crate::run_lock::holder_is_alive(lock));
        if !alive {
            run.state = RunState::Interrupted;
        }
    }
    Ok(())
}

async fn run_page(
    State(dashboard): State<Arc<Dashboard>>,
    _: Authorized,
    id: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<Response, Refusal> {
    let mut run = known_run(&dashboard, id).await?;
    mark_interrupted(&dashboard, std::slice::from_mut(&mut run)).await?;
    let view = pages::RunView::load(&dashboard, run).await?;
    Ok(pages::html(pages::run(&view)))
}

async fn metrics(
    State(dashboard): State<Arc<Dashboard>>,
    _: Authorized,
) -> Result<Response, Refusal> {
    use crate::commands::metrics::{gather, render_prometheus};
    let session = &dashboard.session;
    let text = render_prometheus(&gather(&session.store, &session.settings.prices).await?);
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

/// The fields of the decision forms (each form sends the ones it has).
#[derive(Debug, Default, Deserialize)]
pub struct DecisionForm {
    token: Option<String>,
    csrf: Option<String>,
    /// The stage whose gate the page showed: the CSRF value is bound to it.
    stage: Option<String>,
    note: Option<String>,
    reason: Option<String>,
    feedback: Option<String>,
    /// The page's line comments, as JSON: `[{"artifact", "lines": "40-44", "comment"}]`.
    comments: Option<String>,
    /// The round of staged artifacts the page showed; a decision on an older round is refused.
    round: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DecisionKind {
    Approve,
    Reject,
    Modify,
}

/// A decision request that passed every check; the decision lock is held until it is dropped.
struct Checked<'a> {
    run: RunRecord,
    stage: String,
    form: DecisionForm,
    _deciding: tokio::sync::MutexGuard<'a, ()>,
}

type DecisionBody = Result<Form<DecisionForm>, FormRejection>;
type RunPath = Result<Path<String>, axum::extract::rejection::PathRejection>;

async fn approve(
    State(dashboard): State<Arc<Dashboard>>,
    headers: HeaderMap,
    id: RunPath,
    body: DecisionBody,
) -> Result<Response, Refusal> {
    let checked = check(&dashboard, &headers, id, body, DecisionKind::Approve).await?;
    let session = &dashboard.session;
    let feature = session.feature_of_run(&checked.run.feature_dir);
    let ask = Ask {
        seen_round: checked.form.round,
        note: checked
            .form
            .note
            .clone()
            .filter(|note| !note.trim().is_empty()),
        ..Ask::default()
    };
    let decided = gate_decision::decide(&checked.place(session, &feature), Verb::Approve, ask)
        .await
        .map_err(decision_failed)?;
    eprintln!(
        "approved the {} gate of run {} (dashboard): published {} file(s) into {}",
        checked.stage,
        checked.run.id,
        decided.published.len(),
        feature.key
    );
    Ok(back_to_run(&dashboard, &checked.run.id))
}

async fn reject(
    State(dashboard): State<Arc<Dashboard>>,
    headers: HeaderMap,
    id: RunPath,
    body: DecisionBody,
) -> Result<Response, Refusal> {
    let checked = check(&dashboard, &headers, id, body, DecisionKind::Reject).await?;
    let session = &dashboard.session;
    let run = &checked.run;
    let feature = session.feature_of_run(&run.feature_dir);
    let ask = Ask {
        seen_round: checked.form.round,
        reason: checked.form.reason.clone(),
        ..Ask::default()
    };
    gate_decision::decide(&checked.place(session, &feature), Verb::Reject, ask)
        .await
        .map_err(decision_failed)?;
    // As `stagegate reject`: the run ends here.
    Recorder::new(session.store.clone(), &run.id)
        .emit(&Event::RunFinished {
            run_id: run.id.clone(),
            end: StageEnd::Rejected,
            at_ms: now_ms(),
        })
        .await
        .map_err(|error| Refusal::internal(&AppError::internal(error.to_string())))?;
    eprintln!(
        "rejected the {} gate of run {} (dashboard); nothing was published",
        checked.stage, run.id
    );
    Ok(back_to_run(&dashboard, &run.id))
}

async fn modify(
    State(dashboard): State<Arc<Dashboard>>,
    headers: HeaderMap,
    id: RunPath,
    body: DecisionBody,
) -> Result<Response, Refusal> {
    let checked = check(&dashboard, &headers, id, body, DecisionKind::Modify).await?;
    let comments = form_comments(checked.form.comments.as_deref())?;
    let feedback = checked
        .form
        .feedback
        .clone()
        .filter(|feedback| !feedback.trim().is_empty());
    if feedback.is_none() && comments.is_empty() {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "a modification needs feedback for the synthesizer or line comments",
        ));
    }
    // The synthesizer reworks the artifacts with the feedback and QA checks them again; the
    // gate then waits for a decision on the new version (never prompting: this is no terminal).
    let options = RunOptions {
        no_input: true,
        ..RunOptions::default()
    };
    runner::modify_gate(
        &dashboard.session,
        Some(&checked.run.id),
        feedback,
        &comments,
        checked.form.round,
        options,
    )
    .await
    .map_err(decision_failed)?;
    Ok(back_to_run(&dashboard, &checked.run.id))
}

impl Checked<'_> {
    fn place<'p>(&'p self, session: &'p Session, feature: &'p Feature) -> Place<'p> {
        Place {
            store: &session.store,
            settings: &session.settings,
            run: &self.run,
            feature,
            stage: &self.stage,
        }
    }
}

/// Every check a decision passes before anything is recorded, in the order that leaks least:
/// a readable body (413, 400), the token (403), the run (404), the page's CSRF value (403),
/// the text the decision needs (400), a gate still pending on the page's stage (409). The run
/// is read again under the decision lock (a decision that just finished changed it).
async fn check<'a>(
    dashboard: &'a Dashboard,
    headers: &HeaderMap,
    id: RunPath,
    body: DecisionBody,
    kind: DecisionKind,
) -> Result<Checked<'a>, Refusal> {
    let Form(form) = body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => Refusal::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body is larger than {} KiB", BODY_LIMIT / 1024),
        ),
        _ => Refusal::new(
            StatusCode::BAD_REQUEST,
            format!("malformed form: {}", rejection.body_text()),
        ),
    })?;
    let presented = headers
        .get(TOKEN_HEADER)
        .and_then(|value| value.to_str().ok())
        .or(form.token.as_deref());
    if !dashboard.token.matches(presented) {
        return Err(Refusal::forbidden_token());
    }
    let run = known_run(dashboard, id).await?;
    let stage = form.stage.clone().unwrap_or_default();
    if !dashboard
        .token
        .csrf_matches(&run.id, &stage, form.csrf.as_deref())
    {
        return Err(Refusal::new(
            StatusCode::FORBIDDEN,
            "missing or wrong CSRF value: decide from the run's page (reload it and submit again)",
        ));
    }
    let blank = |text: &Option<String>| text.as_deref().is_none_or(|text| text.trim().is_empty());
    match kind {
        DecisionKind::Reject if blank(&form.reason) => {
            return Err(Refusal::new(
                StatusCode::BAD_REQUEST,
                "a rejection needs a reason",
            ));
        }
        DecisionKind::Modify if blank(&form.feedback) && no_comments(&form.comments) => {
            return Err(Refusal::new(
                StatusCode::BAD_REQUEST,
                "a modification needs feedback for the synthesizer or line comments",
            ));
        }
        _ => {}
    }
    // Held from here until the decision is recorded: two requests cannot both find the gate
    // pending.
    let deciding = dashboard.deciding.lock().await;
    let store = &dashboard.session.store;
    let run = store.run(&run.id).await?.unwrap_or(run);
    let pending = store.pending_gates().await?;
    match pending.iter().find(|gate| gate.run_id == run.id) {
        Some(gate) if gate.stage == stage => Ok(Checked {
            run,
            stage,
            form,
            _deciding: deciding,
        }),
        Some(gate) => Err(Refusal::new(
            StatusCode::CONFLICT,
            format!(
                "run {} now waits at the {} gate, not the {stage} gate this page showed; reload the run's page",
                run.id, gate.stage
            ),
        )),
        None => Err(Refusal::new(
            StatusCode::CONFLICT,
            format!(
                "run {} is not waiting for a decision (it is {}); the {stage} gate was already decided or never opened",
                run.id,
                run.state.as_str()
            ),
        )),
    }
}

/// One line comment as the page sends it.
#[derive(Debug, Deserialize)]
struct FormComment {
    artifact: String,
    lines: String,
    comment: String,
}

fn no_comments(comments: &Option<String>) -> bool {
    comments
        .as_deref()
        .is_none_or(|json| json.trim().is_empty() || json.trim() == "[]")
}

/// The page's line comments, parsed and checked as `--comment` is (against the staged
/// artifacts once the gate is known); 400 when they are malformed.
fn form_comments(json: Option<&str>) -> Result<Vec<(CommentTarget, String)>, Refusal> {
    let Some(json) = json.filter(|json| !json.trim().is_empty()) else {
        return Ok(Vec::new());
    };
    let comments: Vec<FormComment> = serde_json::from_str(json).map_err(|error| {
        Refusal::new(
            StatusCode::BAD_REQUEST,
            format!("malformed line comments: {error}"),
        )
    })?;
    comments
        .into_iter()
        .map(|comment| {
            let target = parse_target(&format!("{}:{}", comment.artifact, comment.lines))
                .map_err(|error| Refusal::new(StatusCode::BAD_REQUEST, error.to_string()))?;
            Ok((target, comment.comment))
        })
        .collect()
}

/// A decision that failed after the checks: the store refusing a decided gate (another
/// process decided first) or stage inputs that changed under a rework are conflicts with the
/// repository's state; agents that failed the rework are a bad gateway; anything else is the
/// server's failure.
fn decision_failed(error: AppError) -> Refusal {
    let status = match &error {
        AppError::InputMissing { .. } => StatusCode::CONFLICT,
        AppError::StageFailed { .. } => StatusCode::BAD_GATEWAY,
        AppError::Usage { .. } => StatusCode::BAD_REQUEST,
        AppError::AlreadyDecided { .. } => StatusCode::CONFLICT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    Refusal::new(status, error.to_string())
}

/// 303 to the run's page, which shows the decision.
fn back_to_run(dashboard: &Dashboard, run_id: &str) -> Response {
    Redirect::to(&pages::run_link(run_id, dashboard.token.as_str())).into_response()
}
