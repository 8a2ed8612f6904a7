//! The `publications` table: the effect of each approval, recorded with the decision and marked
//! done once the staged artifacts are in the feature directory and their approvals recorded.

use sqlx::sqlite::SqliteRow;

use crate::error::StoreError;
use crate::records::{ApprovalRecord, PublicationRecord};
use crate::store::Store;

const SELECT_PUBLICATION: &str = "SELECT run_id, stage, decision_id, feature_dir, artifacts_json, \
     inputs_json, decided_at_ms, done_at_ms FROM publications";

impl Store {
    /// Approvals whose publication has not finished (a crash cut it short), oldest first.
    pub async fn pending_publications(&self) -> Result<Vec<PublicationRecord>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{SELECT_PUBLICATION} WHERE state = 'pending' ORDER BY decided_at_ms, decision_id"
        )))
        .fetch_all(self.pool())
        .await
        .map_err(|error| self.error("listing pending publications", error))?;
        rows.iter()
            .map(|row| self.publication_from_row(row))
            .collect()
    }

    /// The publication of the approval of `stage` in run `run_id`, if the gate was approved.
    pub async fn publication(
        &self,
        run_id: &str,
        stage: &str,
    ) -> Result<Option<PublicationRecord>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{SELECT_PUBLICATION} WHERE run_id = ? AND stage = ?"
        )))
        .bind(run_id)
        .bind(stage)
        .fetch_optional(self.pool())
        .await
        .map_err(|error| self.error("reading a publication", error))?;
        row.map(|row| self.publication_from_row(&row)).transpose()
    }

    /// Marks a publication done and records its approvals, in one transaction. Returns `false`
    /// (and records nothing) when another process finished it first, so that approvals are
    /// never recorded twice.
    pub async fn complete_publication(
        &self,
        run_id: &str,
        stage: &str,
        approvals: &[ApprovalRecord],
        done_at_ms: i64,
    ) -> Result<bool, StoreError> {
        let operation = "recording a publication";
        let mut transaction = self.begin_write(operation).await?;
        let updated = sqlx::query(
            "UPDATE publications SET state = 'done', done_at_ms = ? \
             WHERE run_id = ? AND stage = ? AND state = 'pending'",
        )
        .bind(done_at_ms)
        .bind(run_id)
        .bind(stage)
        .execute(&mut *transaction)
        .await
        .map_err(|error| self.error(operation, error))?
        .rows_affected();
        if updated == 0 {
            return Ok(false);
        }
        for approval in approvals {
            self.record_approval_in(&mut transaction, approval).await?;
        }
        transaction
            .commit()
            .await
            .map_err(|error| self.error(operation, error))?;
        Ok(true)
    }

    fn publication_from_row(&self, row: &SqliteRow) -> Result<PublicationRecord, StoreError> {
        Ok(PublicationRecord {
            run_id: self.column(row, "run_id")?,
            stage: self.column(row, "stage")?,
            decision_id: self.column(row, "decision_id")?,
            feature_dir: self.column(row, "feature_dir")?,
            artifacts: self.json_column(row, "artifacts_json")?,
            inputs: self.json_column(row, "inputs_json")?,
            decided_at_ms: self.column(row, "decided_at_ms")?,
            done_at_ms: self.column(row, "done_at_ms")?,
        })
    }
}
