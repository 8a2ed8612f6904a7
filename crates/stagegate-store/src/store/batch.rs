//! Group commit: the rows the recorder writes (events, attempts, their texts, answers, cache
//! entries, opened gates), many at once in one `BEGIN IMMEDIATE` transaction, in the order given.
//!
//! One transaction for everything that arrived since the last commit costs one lock, one WAL
//! append and one commit instead of one of each per row; the rows become durable together (as
//! `synchronous = NORMAL` makes them), or, on any error, none of them does.

use crate::error::StoreError;
use crate::records::{AttemptRecord, CacheEntry, GateRecord};
use crate::store::{AttemptText, Store};

/// One row of a group commit.
#[derive(Debug, Clone)]
pub enum BatchWrite {
    /// [`Store::append_event`].
    Event {
        run_id: String,
        kind: String,
        payload: serde_json::Value,
    },
    /// [`Store::record_attempt`].
    Attempt(AttemptRecord),
    /// [`Store::record_answer`].
    Answer {
        run_id: String,
        key: String,
        output: String,
    },
    /// [`Store::put_cache`].
    Cache(CacheEntry),
    /// [`Store::open_gate`].
    OpenGate(GateRecord),
    /// An attempt's prompt, output or stderr ([`Store::attempt_text`] reads it back).
    AttemptText(AttemptText),
}

impl Store {
    /// Writes `writes` in order in one transaction: all of them are committed when this
    /// returns `Ok`, none of them when it returns an error.
    pub async fn write_batch(&self, writes: &[BatchWrite]) -> Result<(), StoreError> {
        if writes.is_empty() {
            return Ok(());
        }
        let operation = "recording the run";
        let mut transaction = self.begin_write(operation).await?;
        for write in writes {
            match write {
                BatchWrite::Event {
                    run_id,
                    kind,
                    payload,
                } => {
                    self.append_event_in(&mut transaction, run_id, kind, payload)
                        .await?;
                }
                BatchWrite::Attempt(attempt) => {
                    self.record_attempt_in(&mut transaction, attempt).await?;
                }
                BatchWrite::Answer {
                    run_id,
                    key,
                    output,
                } => {
                    self.record_answer_in(&mut transaction, run_id, key, output)
                        .await?;
                }
                BatchWrite::Cache(entry) => self.put_cache_in(&mut transaction, entry).await?,
                BatchWrite::OpenGate(gate) => self.open_gate_in(&mut transaction, gate).await?,
                BatchWrite::AttemptText(text) => {
                    self.record_attempt_text_in(&mut transaction, text).await?;
                }
            }
        }
        transaction
            .commit()
            .await
            .map_err(|error| self.error(operation, error))
    }
}
