//! The `events` table: the run's log, appended before the CLI acts on an event, so that the state
//! after a crash is a replay of it.

use sqlx::SqliteConnection;

use crate::error::StoreError;
use crate::records::EventRecord;
use crate::store::{Store, now_ms};

impl Store {
    /// Appends an event of run `run_id` and returns its sequence number, which increases strictly
    /// across the whole database (never reused). The event is durable (as `synchronous = NORMAL`
    /// makes it) when this returns.
    pub async fn append_event(
        &self,
        run_id: &str,
        kind: &str,
        payload: &serde_json::Value,
    ) -> Result<i64, StoreError> {
        let operation = "appending an event";
        let mut transaction = self.begin_write(operation).await?;
        let seq = self
            .append_event_in(&mut transaction, run_id, kind, payload)
            .await?;
        transaction
            .commit()
            .await
            .map_err(|error| self.error(operation, error))?;
        Ok(seq)
    }

    /// Appends an event inside `connection`'s open write transaction.
    pub(crate) async fn append_event_in(
        &self,
        connection: &mut SqliteConnection,
        run_id: &str,
        kind: &str,
        payload: &serde_json::Value,
    ) -> Result<i64, StoreError> {
        let operation = "appending an event";
        let payload_json = self.to_json("event payload", payload)?;
        let seq: i64 = sqlx::query_scalar(
            "INSERT INTO events (run_id, kind, payload_json, recorded_at_ms) VALUES (?, ?, ?, ?) \
             RETURNING seq",
        )
        .bind(run_id)
        .bind(kind)
        .bind(payload_json)
        .bind(now_ms())
        .fetch_one(&mut *connection)
        .await
        .map_err(|error| self.write_error(operation, run_id, error))?;
        Ok(seq)
    }

    /// The events of run `run_id`, in sequence order.
    pub async fn events(&self, run_id: &str) -> Result<Vec<EventRecord>, StoreError> {
        self.events_after(run_id, 0).await
    }

    /// The events of run `run_id` after sequence number `after_seq`, in sequence order.
    pub async fn events_after(
        &self,
        run_id: &str,
        after_seq: i64,
    ) -> Result<Vec<EventRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, run_id, kind, payload_json, recorded_at_ms FROM events \
             WHERE run_id = ? AND seq > ? ORDER BY seq",
        )
        .bind(run_id)
        .bind(after_seq)
        .fetch_all(self.pool())
        .await
        .map_err(|error| self.error("reading events", error))?;
        rows.iter().map(|row| self.event_from_row(row)).collect()
    }

    /// The events of run `run_id` of the given kinds, in sequence order: the others' payloads
    /// are neither read nor parsed.
    pub async fn events_of_kinds(
        &self,
        run_id: &str,
        kinds: &[&str],
    ) -> Result<Vec<EventRecord>, StoreError> {
        let kinds = self.to_json("event kinds", &kinds)?;
        let rows = sqlx::query(
            "SELECT seq, run_id, kind, payload_json, recorded_at_ms FROM events \
             WHERE run_id = ? AND kind IN (SELECT value FROM json_each(?)) ORDER BY seq",
        )
        .bind(run_id)
        .bind(kinds)
        .fetch_all(self.pool())
        .await
        .map_err(|error| self.error("reading events", error))?;
        rows.iter().map(|row| self.event_from_row(row)).collect()
    }

    pub(crate) fn event_from_row(
        &self,
        row: &sqlx::sqlite::SqliteRow,
    ) -> Result<EventRecord, StoreError> {
        Ok(EventRecord {
            seq: self.column(row, "seq")?,
            run_id: self.column(row, "run_id")?,
            kind: self.column(row, "kind")?,
            payload: self.json_column(row, "payload_json")?,
            recorded_at_ms: self.column(row, "recorded_at_ms")?,
        })
    }
}
