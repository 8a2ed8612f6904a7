//! A run's log read back from the store as typed [`Envelope`]s: the one place stored events
//! become [`Event`](stagegate_engine::event::Event)s again (the store keeps kinds and JSON, and
//! knows nothing of the engine's types).

use stagegate_engine::envelope::{Envelope, EnvelopeError};
use stagegate_store::{EventRecord, Store};

use crate::error::AppError;

/// One stored event, typed.
pub fn envelope(record: &EventRecord) -> Result<Envelope, EnvelopeError> {
    Envelope::read(
        record.seq,
        &record.run_id,
        &record.kind,
        &record.payload,
        record.recorded_at_ms,
    )
}

/// Every event of run `run_id`, in order.
pub async fn read(store: &Store, run_id: &str) -> Result<Vec<Envelope>, AppError> {
    store.events(run_id).await?.iter().map(typed).collect()
}

/// One stored event, typed, or an error that says where to look.
pub fn typed(record: &EventRecord) -> Result<Envelope, AppError> {
    envelope(record).map_err(|error| {
        AppError::internal(format!(
            "{error}\nhint: the state database may have been changed by hand; `stagegate show {}` lists what the run kept",
            record.run_id
        ))
    })
}
