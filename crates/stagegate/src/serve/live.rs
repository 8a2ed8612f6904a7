//! `/runs/<id>/events`: the run's events as server-sent events, as they are appended to the
//! store — by this process or by a `stagegate run` in another one (they share the store). The
//! store is polled every 300 ms for events after the last one sent; each goes out as
//! `id: <seq>` and `data: <the event record as JSON>`, so a reconnecting browser resumes after
//! the last one it saw (`Last-Event-ID`). The stream ends when the server shuts down.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde::Deserialize;
use stagegate_store::EventRecord;

use super::Dashboard;
use super::routes::{Authorized, Refusal, known_run};

const POLL_INTERVAL: Duration = Duration::from_millis(300);

#[derive(Debug, Default, Deserialize)]
pub struct LiveQuery {
    /// Send only the events after this sequence number (the page already lists those).
    after: Option<i64>,
}

pub async fn events(
    State(dashboard): State<Arc<Dashboard>>,
    _: Authorized,
    id: Result<Path<String>, PathRejection>,
    query: Result<Query<LiveQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, Refusal> {
    let run = known_run(&dashboard, id).await?;
    let resumed = headers
        .get("last-event-id")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok());
    let after = resumed
        .or(query.ok().and_then(|Query(query)| query.after))
        .unwrap_or(0);
    let follow = Follow {
        dashboard,
        run_id: run.id,
        after,
        queue: VecDeque::new(),
        polled: false,
    };
    let stream = futures_util::stream::unfold(follow, Follow::next);
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// The state of one stream: where it is in the run's log.
struct Follow {
    dashboard: Arc<Dashboard>,
    run_id: String,
    after: i64,
    queue: VecDeque<EventRecord>,
    polled: bool,
}

impl Follow {
    async fn next(mut self) -> Option<(Result<Event, Infallible>, Self)> {
        loop {
            if let Some(record) = self.queue.pop_front() {
                self.after = record.seq;
                let event = Event::default()
                    .id(record.seq.to_string())
                    .data(serde_json::to_string(&record).unwrap_or_default());
                return Some((Ok(event), self));
            }
            if self.polled {
                tokio::select! {
                    () = self.dashboard.shutdown.cancelled() => return None,
                    () = tokio::time::sleep(POLL_INTERVAL) => {}
                }
            }
            if self.dashboard.shutdown.is_cancelled() {
                return None;
            }
            self.polled = true;
            // A failed read (the database busy with a writer) is tried again at the next poll.
            if let Ok(events) = self.dashboard.session.store.events(&self.run_id).await {
                let after = self.after;
                self.queue
                    .extend(events.into_iter().filter(|event| event.seq > after));
            }
        }
    }
}
