//! The `gates` table: at most one gate per stage of a run, pending until a person decides.

use sqlx::SqliteConnection;
use sqlx::sqlite::SqliteRow;

use crate::error::StoreError;
use crate::records::{GateRecord, GateState};
use crate::store::Store;

/// The gate columns, followed by the rest of the query.
macro_rules! select_gate {
    ($rest:literal) => {
        concat!(
            "SELECT run_id, stage, question, artifacts_json, state, round, opened_at_ms, closed_at_ms ",
            "FROM gates",
            $rest
        )
    };
}

pub(crate) use select_gate;

/// Opens a gate, or renames a pending one (see [`Store::open_gate`]).
pub(crate) const OPEN_GATE: &str = "INSERT INTO gates (run_id, stage, question, artifacts_json, \
     state, opened_at_ms, closed_at_ms, round) VALUES (?, ?, ?, ?, ?, ?, NULL, 1) \
     ON CONFLICT (run_id, stage) DO UPDATE SET question = excluded.question, \
     artifacts_json = excluded.artifacts_json WHERE state = 'pending'";

impl Store {
    /// Opens the gate of `(gate.run_id, gate.stage)` as [`GateState::Pending`] at round 1,
    /// whatever `gate.state`, `gate.round` and `gate.closed_at_ms` say.
    ///
    /// Opening a gate that exists already changes only its question and artifact names while it
    /// is pending, and nothing once it is decided: a gate moves only through
    /// [`Store::decide_gate`], so that a late "open" can never undo a decision.
    pub async fn open_gate(&self, gate: &GateRecord) -> Result<(), StoreError> {
        let operation = "opening a gate";
        let mut transaction = self.begin_write(operation).await?;
        self.open_gate_in(&mut transaction, gate).await?;
        transaction
            .commit()
            .await
            .map_err(|error| self.error(operation, error))
    }

    /// Opens a gate inside `connection`'s open write transaction.
    pub(crate) async fn open_gate_in(
        &self,
        connection: &mut SqliteConnection,
        gate: &GateRecord,
    ) -> Result<(), StoreError> {
        let operation = "opening a gate";
        let artifacts_json = self.to_json("gate artifacts", &gate.artifacts)?;
        sqlx::query(OPEN_GATE)
            .bind(&gate.run_id)
            .bind(&gate.stage)
            .bind(&gate.question)
            .bind(artifacts_json)
            .bind(GateState::Pending.as_str())
            .bind(gate.opened_at_ms)
            .execute(&mut *connection)
            .await
            .map_err(|error| self.write_error(operation, &gate.run_id, error))?;
        Ok(())
    }

    /// The gate of `stage` in run `run_id`, if one was opened.
    pub async fn gate(&self, run_id: &str, stage: &str) -> Result<Option<GateRecord>, StoreError> {
        let row = sqlx::query(select_gate!(" WHERE run_id = ? AND stage = ?"))
            .bind(run_id)
            .bind(stage)
            .fetch_optional(self.pool())
            .await
            .map_err(|error| self.error("reading a gate", error))?;
        row.map(|row| self.gate_from_row(&row)).transpose()
    }

    /// Every pending gate of every run, oldest first: what `approve` / `reject` without a run id
    /// choose from.
    pub async fn pending_gates(&self) -> Result<Vec<GateRecord>, StoreError> {
        let rows = sqlx::query(select_gate!(
            " WHERE state = 'pending' ORDER BY opened_at_ms, run_id, stage"
        ))
        .fetch_all(self.pool())
        .await
        .map_err(|error| self.error("listing pending gates", error))?;
        rows.iter().map(|row| self.gate_from_row(row)).collect()
    }

    pub(crate) fn gate_from_row(&self, row: &SqliteRow) -> Result<GateRecord, StoreError> {
        Ok(GateRecord {
            run_id: self.column(row, "run_id")?,
            stage: self.column(row, "stage")?,
            question: self.column(row, "question")?,
            artifacts: self.json_column(row, "artifacts_json")?,
            state: self.name_column(row, "state")?,
            round: {
                let round: i64 = self.column(row, "round")?;
                u32::try_from(round)
                    .map_err(|error| self.invalid("gate round", format!("{round}: {error}")))?
            },
            opened_at_ms: self.column(row, "opened_at_ms")?,
            closed_at_ms: self.column(row, "closed_at_ms")?,
        })
    }
}
