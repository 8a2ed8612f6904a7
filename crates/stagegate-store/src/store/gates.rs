//! The `gates` table: at most one gate per stage of a run, pending until a person decides.

use sqlx::sqlite::SqliteRow;

use crate::error::StoreError;
use crate::records::{GateRecord, GateState};
use crate::store::{Store, now_ms};

/// The gate columns, followed by the rest of the query.
macro_rules! select_gate {
    ($rest:literal) => {
        concat!(
            "SELECT run_id, stage, question, artifacts_json, state, opened_at_ms, closed_at_ms ",
            "FROM gates",
            $rest
        )
    };
}

impl Store {
    /// Opens the gate of `(gate.run_id, gate.stage)` as [`GateState::Pending`], whatever
    /// `gate.state` and `gate.closed_at_ms` say. Opening it again (after a modification, the gate
    /// asks again) replaces the question, the artifacts and the opening time.
    pub async fn open_gate(&self, gate: &GateRecord) -> Result<(), StoreError> {
        let operation = "opening a gate";
        let artifacts_json = self.to_json("gate artifacts", &gate.artifacts)?;
        let mut transaction = self.begin_write(operation).await?;
        sqlx::query(
            "INSERT INTO gates (run_id, stage, question, artifacts_json, state, opened_at_ms, \
             closed_at_ms) VALUES (?, ?, ?, ?, ?, ?, NULL) \
             ON CONFLICT (run_id, stage) DO UPDATE SET question = excluded.question, \
             artifacts_json = excluded.artifacts_json, state = excluded.state, \
             opened_at_ms = excluded.opened_at_ms, closed_at_ms = NULL",
        )
        .bind(&gate.run_id)
        .bind(&gate.stage)
        .bind(&gate.question)
        .bind(artifacts_json)
        .bind(GateState::Pending.as_str())
        .bind(gate.opened_at_ms)
        .execute(&mut *transaction)
        .await
        .map_err(|error| self.write_error(operation, &gate.run_id, error))?;
        transaction
            .commit()
            .await
            .map_err(|error| self.error(operation, error))
    }

    /// Decides a pending gate (`closed_at_ms` becomes now).
    ///
    /// Closing it again with the state it already has is a no-op, so that a replay after a crash
    /// can repeat the call; closing a decided gate with the other state is
    /// [`StoreError::GateAlreadyClosed`], which stops a second terminal from overturning a
    /// decision. `GateState::Pending` is refused: reopen with [`Store::open_gate`].
    pub async fn close_gate(
        &self,
        run_id: &str,
        stage: &str,
        state: GateState,
    ) -> Result<(), StoreError> {
        let operation = "closing a gate";
        if state == GateState::Pending {
            return Err(StoreError::ClosePending {
                run_id: run_id.to_owned(),
                stage: stage.to_owned(),
            });
        }
        let mut transaction = self.begin_write(operation).await?;
        let current: Option<String> =
            sqlx::query_scalar("SELECT state FROM gates WHERE run_id = ? AND stage = ?")
                .bind(run_id)
                .bind(stage)
                .fetch_optional(&mut *transaction)
                .await
                .map_err(|error| self.error(operation, error))?;
        let Some(current) = current else {
            return Err(StoreError::UnknownGate {
                path: self.database_path().to_path_buf(),
                run_id: run_id.to_owned(),
                stage: stage.to_owned(),
            });
        };
        let current: GateState = current
            .parse()
            .map_err(|error: crate::ParseNameError| self.invalid("state", error.to_string()))?;
        if current == state {
            return Ok(());
        }
        if current != GateState::Pending {
            return Err(StoreError::GateAlreadyClosed {
                run_id: run_id.to_owned(),
                stage: stage.to_owned(),
                state: current.as_str(),
            });
        }
        sqlx::query("UPDATE gates SET state = ?, closed_at_ms = ? WHERE run_id = ? AND stage = ?")
            .bind(state.as_str())
            .bind(now_ms())
            .bind(run_id)
            .bind(stage)
            .execute(&mut *transaction)
            .await
            .map_err(|error| self.error(operation, error))?;
        transaction
            .commit()
            .await
            .map_err(|error| self.error(operation, error))
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

    fn gate_from_row(&self, row: &SqliteRow) -> Result<GateRecord, StoreError> {
        Ok(GateRecord {
            run_id: self.column(row, "run_id")?,
            stage: self.column(row, "stage")?,
            question: self.column(row, "question")?,
            artifacts: self.json_column(row, "artifacts_json")?,
            state: self.name_column(row, "state")?,
            opened_at_ms: self.column(row, "opened_at_ms")?,
            closed_at_ms: self.column(row, "closed_at_ms")?,
        })
    }
}
