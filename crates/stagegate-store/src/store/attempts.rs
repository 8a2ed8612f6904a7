//! The `attempts` table: one row per agent attempt, written when it starts and again when it ends.

use std::sync::LazyLock;

use sqlx::{AssertSqlSafe, SqliteConnection};

use crate::records::AttemptRecord;
use crate::store::{Store, TextKind};

/// What a later row of an attempt overwrites: everything but the texts it does not carry (its
/// outcome comes without the prompt its start was written with).
pub(crate) static UPDATE_ATTEMPT_ON_CONFLICT: LazyLock<String> = LazyLock::new(|| {
    let mut update = String::from(
        " ON CONFLICT (run_id, stage, phase, agent, attempt) DO UPDATE SET \
         backend = excluded.backend, started_at_ms = excluded.started_at_ms, \
         finished_at_ms = excluded.finished_at_ms, outcome = excluded.outcome, \
         failure_reason = excluded.failure_reason, output_hash = excluded.output_hash, \
         output_bytes = excluded.output_bytes, confidence = excluded.confidence, \
         input_tokens = excluded.input_tokens, output_tokens = excluded.output_tokens, \
         cost_usd = excluded.cost_usd",
    );
    for kind in TextKind::IN_ROW_ORDER.map(TextKind::as_str) {
        update.push_str(&format!(
            ", {kind}_length = coalesce(excluded.{kind}_length, {kind}_length), \
             {kind}_chunks = CASE WHEN excluded.{kind}_length IS NULL THEN {kind}_chunks \
             ELSE excluded.{kind}_chunks END, \
             {kind}_body = CASE WHEN excluded.{kind}_length IS NULL THEN {kind}_body \
             ELSE excluded.{kind}_body END"
        ));
    }
    update
});

/// One attempt's row, without texts (those an earlier row holds stay).
static RECORD_ATTEMPT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO attempts (run_id, stage, phase, agent, attempt, backend, started_at_ms, \
         finished_at_ms, outcome, failure_reason, output_hash, output_bytes, confidence, \
         input_tokens, output_tokens, cost_usd) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?){}",
        *UPDATE_ATTEMPT_ON_CONFLICT
    )
});

impl Store {
    /// Records an attempt, replacing the earlier record of the same
    /// `(run_id, stage, phase, agent, attempt)` but not its texts: the engine records an attempt
    /// when it starts and again, with its outcome, when it finishes.
    pub async fn record_attempt(&self, attempt: &AttemptRecord) -> Result<(), crate::StoreError> {
        let operation = "recording an attempt";
        let mut transaction = self.begin_write(operation).await?;
        self.record_attempt_in(&mut transaction, attempt).await?;
        transaction
            .commit()
            .await
            .map_err(|error| self.error(operation, error))
    }

    /// Records an attempt inside `connection`'s open write transaction.
    pub(crate) async fn record_attempt_in(
        &self,
        connection: &mut SqliteConnection,
        attempt: &AttemptRecord,
    ) -> Result<(), crate::StoreError> {
        let operation = "recording an attempt";
        sqlx::query(AssertSqlSafe(RECORD_ATTEMPT.as_str()))
            .bind(&attempt.run_id)
            .bind(&attempt.stage)
            .bind(&attempt.phase)
            .bind(&attempt.agent)
            .bind(i64::from(attempt.attempt))
            .bind(&attempt.backend)
            .bind(attempt.started_at_ms)
            .bind(attempt.finished_at_ms)
            .bind(&attempt.outcome)
            .bind(&attempt.failure_reason)
            .bind(&attempt.output_hash)
            .bind(attempt.output_bytes)
            .bind(attempt.confidence)
            .bind(attempt.input_tokens)
            .bind(attempt.output_tokens)
            .bind(attempt.cost_usd)
            .execute(&mut *connection)
            .await
            .map_err(|error| self.write_error(operation, &attempt.run_id, error))?;
        Ok(())
    }

    /// The attempts of run `run_id`, in the order they were first recorded.
    pub async fn attempts(&self, run_id: &str) -> Result<Vec<AttemptRecord>, crate::StoreError> {
        let rows = sqlx::query(
            "SELECT run_id, stage, phase, agent, attempt, backend, started_at_ms, finished_at_ms, \
             outcome, failure_reason, output_hash, output_bytes, confidence, input_tokens, \
             output_tokens, cost_usd FROM attempts \
             WHERE run_id = ? ORDER BY rowid",
        )
        .bind(run_id)
        .fetch_all(self.pool())
        .await
        .map_err(|error| self.error("reading attempts", error))?;
        rows.iter()
            .map(|row| {
                let attempt: i64 = self.column(row, "attempt")?;
                Ok(AttemptRecord {
                    run_id: self.column(row, "run_id")?,
                    stage: self.column(row, "stage")?,
                    phase: self.column(row, "phase")?,
                    agent: self.column(row, "agent")?,
                    attempt: u32::try_from(attempt)
                        .map_err(|error| self.invalid("attempt", format!("{attempt}: {error}")))?,
                    backend: self.column(row, "backend")?,
                    started_at_ms: self.column(row, "started_at_ms")?,
                    finished_at_ms: self.column(row, "finished_at_ms")?,
                    outcome: self.column(row, "outcome")?,
                    failure_reason: self.column(row, "failure_reason")?,
                    output_hash: self.column(row, "output_hash")?,
                    output_bytes: self.column(row, "output_bytes")?,
                    confidence: self.column(row, "confidence")?,
                    input_tokens: self.column(row, "input_tokens")?,
                    output_tokens: self.column(row, "output_tokens")?,
                    cost_usd: self.column(row, "cost_usd")?,
                })
            })
            .collect()
    }
}
