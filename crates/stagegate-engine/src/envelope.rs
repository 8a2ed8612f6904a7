//! An event as the log keeps it: which run, where in the log, when, and under which version of
//! the event schema it was written.
//!
//! The store keeps each event as its kind and JSON payload (it knows nothing of [`Event`]); an
//! [`Envelope`] is that record read back, typed, so that every view of a run (`status`, `runs`,
//! the dashboard, …) is a fold over envelopes instead of JSON picked apart by hand.
//!
//! Versions: a payload may carry `"version": N`; one without it was written before versions
//! were recorded and is version 1. An event this build cannot read is an error when its version
//! is this build's or older (the log is damaged), and [`Event::Unknown`] when it is newer (a
//! later stagegate wrote it; readers skip it), just like a kind this build does not know.

use serde::{Deserialize, Serialize};

use crate::event::Event;

/// The version of the event schema this build writes and reads. An event of an older version
/// must still read; raise it when a change would make this build misread an older event.
pub const EVENT_SCHEMA_VERSION: u32 = 1;

/// One event of a run's log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// The event schema version the event was written under.
    pub version: u32,
    pub run_id: String,
    /// Its position in the log (increasing across the whole database).
    pub seq: i64,
    /// When it happened (milliseconds since the Unix epoch): the event's own time, or when it
    /// was recorded for an event this build does not know.
    pub at_ms: i64,
    pub event: Event,
}

/// A stored event that does not read as an [`Event`].
#[derive(Debug, thiserror::Error)]
#[error("event {seq} ({kind}) of run {run_id} cannot be read: {message}")]
pub struct EnvelopeError {
    pub seq: i64,
    pub run_id: String,
    pub kind: String,
    pub message: String,
}

impl Envelope {
    /// Reads one stored event: its sequence number, run, kind, JSON payload and the time it
    /// was recorded.
    pub fn read(
        seq: i64,
        run_id: &str,
        kind: &str,
        payload: &serde_json::Value,
        recorded_at_ms: i64,
    ) -> Result<Envelope, EnvelopeError> {
        let version = payload
            .get("version")
            .and_then(serde_json::Value::as_u64)
            .and_then(|version| u32::try_from(version).ok())
            .unwrap_or(1);
        let mut payload = payload.clone();
        // The payload names its kind (`"event": "…"`); the stored kind fills in if it does not.
        if let Some(object) = payload.as_object_mut() {
            object
                .entry("event")
                .or_insert_with(|| serde_json::Value::String(kind.to_owned()));
        }
        let event = match serde_json::from_value::<Event>(payload) {
            Ok(event) => event,
            Err(_) if version > EVENT_SCHEMA_VERSION => Event::Unknown,
            Err(error) => {
                return Err(EnvelopeError {
                    seq,
                    run_id: run_id.to_owned(),
                    kind: kind.to_owned(),
                    message: error.to_string(),
                });
            }
        };
        Ok(Envelope {
            version,
            run_id: run_id.to_owned(),
            seq,
            at_ms: event.at_ms().unwrap_or(recorded_at_ms),
            event,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::event::StageEnd;

    #[test]
    fn an_event_without_a_version_is_version_1() {
        let payload =
            json!({"event": "run_finished", "run_id": "r1", "end": "approved", "at_ms": 7});
        let envelope = Envelope::read(3, "r1", "run_finished", &payload, 9).expect("reads");
        assert_eq!(
            envelope,
            Envelope {
                version: 1,
                run_id: "r1".into(),
                seq: 3,
                at_ms: 7,
                event: Event::RunFinished {
                    run_id: "r1".into(),
                    end: StageEnd::Approved,
                    at_ms: 7
                },
            }
        );
    }

    #[test]
    fn an_unknown_kind_is_unknown_at_its_recorded_time() {
        let payload = json!({"event": "gate_escalated", "run_id": "r1", "at_ms": 7});
        let envelope = Envelope::read(3, "r1", "gate_escalated", &payload, 9).expect("reads");
        assert_eq!(envelope.event, Event::Unknown);
        assert_eq!(envelope.at_ms, 9);
    }

    #[test]
    fn a_known_kind_changed_by_a_newer_version_is_unknown() {
        let payload = json!({"event": "run_finished", "run_id": "r1", "end": "abandoned", "at_ms": 7, "version": 2});
        let envelope = Envelope::read(3, "r1", "run_finished", &payload, 9).expect("reads");
        assert_eq!(envelope.event, Event::Unknown);
        assert_eq!(envelope.version, 2);
    }

    #[test]
    fn a_damaged_event_of_this_version_is_an_error() {
        let payload =
            json!({"event": "run_finished", "run_id": "r1", "end": "abandoned", "at_ms": 7});
        let error = Envelope::read(3, "r1", "run_finished", &payload, 9).expect_err("refused");
        assert!(
            error
                .to_string()
                .starts_with("event 3 (run_finished) of run r1 cannot be read"),
            "{error}"
        );
    }

    #[test]
    fn the_stored_kind_fills_in_a_missing_tag() {
        let payload = json!({"run_id": "r1", "end": "failed", "at_ms": 7});
        let envelope = Envelope::read(3, "r1", "run_finished", &payload, 9).expect("reads");
        assert_eq!(envelope.event.kind(), "run_finished");
    }
}
