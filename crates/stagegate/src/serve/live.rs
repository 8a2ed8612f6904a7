//! `/runs/<id>/events`: the run's events as server-sent events, as they are appended to the
//! store — by this process or by a `stagegate run` in another one (they share the store). The
//! store is polled every 300 ms for events after the last one sent, read as typed envelopes;
//! each goes out as `id: <seq>` and `data: <the envelope as JSON>` (see [`LiveEvent`]), so a
//! reconnecting browser resumes after the last one it saw (`Last-Event-ID`). The stream ends
//! when the server shuts down.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::Stream;
use serde::{Deserialize, Serialize};
use stagegate_engine::envelope::Envelope;
use stagegate_engine::event::Event;
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
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, Refusal> {
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
    queue: VecDeque<Envelope>,
    polled: bool,
}

/// One event as the stream sends it: the envelope, with the event's kind beside it and the
/// event itself as `payload` (the page's script reads `kind`, `payload` and `seq`).
#[derive(Debug, Serialize)]
struct LiveEvent<'a> {
    seq: i64,
    run_id: &'a str,
    version: u32,
    at_ms: i64,
    kind: &'static str,
    payload: &'a Event,
}

impl<'a> From<&'a Envelope> for LiveEvent<'a> {
    fn from(envelope: &'a Envelope) -> Self {
        LiveEvent {
            seq: envelope.seq,
            run_id: &envelope.run_id,
            version: envelope.version,
            at_ms: envelope.at_ms,
            kind: envelope.event.kind(),
            payload: &envelope.event,
        }
    }
}

impl Follow {
    async fn next(mut self) -> Option<(Result<SseEvent, Infallible>, Self)> {
        loop {
            if let Some(envelope) = self.queue.pop_front() {
                self.after = envelope.seq;
                let event = SseEvent::default()
                    .id(envelope.seq.to_string())
                    .data(serde_json::to_string(&LiveEvent::from(&envelope)).unwrap_or_default());
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
            if let Ok(records) = self.dashboard.session.store.events(&self.run_id).await {
                self.queue.extend(envelopes_after(&records, self.after));
            }
        }
    }
}

/// The events after sequence number `after`, typed. Only what is new is read; an event that
/// does not read (a damaged log, which the run page reports) is passed over.
fn envelopes_after(records: &[EventRecord], after: i64) -> impl Iterator<Item = Envelope> + '_ {
    records
        .iter()
        .filter(move |record| record.seq > after)
        .filter_map(|record| crate::run_log::envelope(record).ok())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn record(seq: i64, kind: &str, payload: serde_json::Value) -> EventRecord {
        EventRecord {
            seq,
            run_id: "r1".into(),
            kind: kind.into(),
            payload,
            recorded_at_ms: 100 + seq,
        }
    }

    #[test]
    fn only_the_events_after_the_last_one_sent_go_out_typed() {
        let records = [
            record(
                1,
                "run_finished",
                json!({"run_id": "r1", "end": "failed", "at_ms": 1}),
            ),
            record(
                2,
                "quorum_lost",
                json!({"run_id": "r1", "stage": "plan", "reason": "none", "at_ms": 2}),
            ),
            record(3, "quorum_lost", json!({"run_id": "r1", "at_ms": 3})),
            record(4, "gate_escalated", json!({"run_id": "r1", "at_ms": 4})),
        ];
        let sent: Vec<(i64, &str)> = envelopes_after(&records, 1)
            .map(|envelope| (envelope.seq, envelope.event.kind()))
            .collect();
        assert_eq!(sent, [(2, "quorum_lost"), (4, "unknown")]);
    }

    #[test]
    fn a_streamed_event_has_its_kind_and_the_event_as_payload() {
        let records = [record(
            7,
            "quorum_lost",
            json!({"run_id": "r1", "stage": "plan", "reason": "none", "at_ms": 2}),
        )];
        let envelope = envelopes_after(&records, 0).next().expect("one event");
        let data = serde_json::to_value(LiveEvent::from(&envelope)).expect("serializes");
        assert_eq!(
            data,
            json!({
                "seq": 7,
                "run_id": "r1",
                "version": 1,
                "at_ms": 2,
                "kind": "quorum_lost",
                "payload": {"event": "quorum_lost", "run_id": "r1", "stage": "plan", "reason": "none", "at_ms": 2},
            })
        );
    }
}
