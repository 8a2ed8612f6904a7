//! The `decisions` table: every decision a person took at a gate, an append-only audit trail
//! (the schema's triggers refuse updates and deletions).

use sqlx::SqliteConnection;

use crate::error::StoreError;
use crate::records::DecisionRecord;
use crate::store::Store;

impl Store {
    /// Appends a decision and returns its id; `decision.id` is ignored.
    pub async fn record_decision(&self, decision: &DecisionRecord) -> Result<i64, StoreError> {
        let operation = "recording a decision";
        let mut transaction = self.begin_write(operation).await?;
        let id = self.record_decision_in(&mut transaction, decision).await?;
        transaction
            .commit()
            .await
            .map_err(|error| self.error(operation, error))?;
        Ok(id)
    }

    /// [`Store::record_decision`] inside a transaction the caller holds.
    pub(crate) async fn record_decision_in(
        &self,
        connection: &mut SqliteConnection,
        decision: &DecisionRecord,
    ) -> Result<i64, StoreError> {
        sqlx::query_scalar(
            "INSERT INTO decisions (run_id, stage, kind, reason, note, diff, decided_by, \
             decided_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(&decision.run_id)
        .bind(&decision.stage)
        .bind(decision.kind.as_str())
        .bind(&decision.reason)
        .bind(&decision.note)
        .bind(&decision.diff)
        .bind(&decision.decided_by)
        .bind(decision.decided_at_ms)
        .fetch_one(connection)
        .await
        .map_err(|error| self.write_error("recording a decision", &decision.run_id, error))
    }

    /// The decisions of run `run_id`, in the order they were recorded, with their ids.
    pub async fn decisions(&self, run_id: &str) -> Result<Vec<DecisionRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, run_id, stage, kind, reason, note, diff, decided_by, decided_at_ms \
             FROM decisions WHERE run_id = ? ORDER BY id",
        )
        .bind(run_id)
        .fetch_all(self.pool())
        .await
        .map_err(|error| self.error("reading decisions", error))?;
        rows.iter().map(|row| self.decision_from_row(row)).collect()
    }

    /// The decisions of every run, in the order they were recorded (so each run's in its
    /// own order), with their ids: one query for `status`, however many runs there are.
    pub async fn all_decisions(&self) -> Result<Vec<DecisionRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, run_id, stage, kind, reason, note, diff, decided_by, decided_at_ms \
             FROM decisions ORDER BY id",
        )
        .fetch_all(self.pool())
        .await
        .map_err(|error| self.error("reading decisions", error))?;
        rows.iter().map(|row| self.decision_from_row(row)).collect()
    }

    pub(crate) fn decision_from_row(
        &self,
        row: &sqlx::sqlite::SqliteRow,
    ) -> Result<DecisionRecord, StoreError> {
        Ok(DecisionRecord {
            id: Some(self.column(row, "id")?),
            run_id: self.column(row, "run_id")?,
            stage: self.column(row, "stage")?,
            kind: self.name_column(row, "kind")?,
            reason: self.column(row, "reason")?,
            note: self.column(row, "note")?,
            diff: self.column(row, "diff")?,
            decided_by: self.column(row, "decided_by")?,
            decided_at_ms: self.column(row, "decided_at_ms")?,
        })
    }
}
