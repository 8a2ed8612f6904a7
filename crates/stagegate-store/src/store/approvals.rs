//! The `approvals` table: approvals bound to the hash of the content approved, append-only.
//!
//! Whether an approval still counts is the caller's question (does the file still hash to
//! `content_hash`?); the store only remembers what was approved, when, and by which gate.

use sqlx::SqliteConnection;

use crate::error::StoreError;
use crate::records::ApprovalRecord;
use crate::store::Store;

impl Store {
    /// Appends an approval. `approval.run_id`, when set, must name an existing run.
    pub async fn record_approval(&self, approval: &ApprovalRecord) -> Result<(), StoreError> {
        let operation = "recording an approval";
        let mut transaction = self.begin_write(operation).await?;
        self.record_approval_in(&mut transaction, approval).await?;
        transaction
            .commit()
            .await
            .map_err(|error| self.error(operation, error))
    }

    /// [`Store::record_approval`] inside a transaction the caller holds.
    pub(crate) async fn record_approval_in(
        &self,
        connection: &mut SqliteConnection,
        approval: &ApprovalRecord,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO approvals (feature_dir, subject, path, content_hash, run_id, stage, \
             approved_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&approval.feature_dir)
        .bind(&approval.subject)
        .bind(&approval.path)
        .bind(&approval.content_hash)
        .bind(&approval.run_id)
        .bind(&approval.stage)
        .bind(approval.approved_at_ms)
        .execute(connection)
        .await
        .map_err(|error| {
            self.write_error(
                "recording an approval",
                approval.run_id.as_deref().unwrap_or_default(),
                error,
            )
        })?;
        Ok(())
    }

    /// The newest approval of `subject` for this feature directory (subjects: `spec`,
    /// `implementation`, `artifact:plan.md`, ...).
    ///
    /// "Newest" is the one recorded last, not the largest `approved_at_ms`: the wall clock can
    /// step backwards, the order of recording cannot.
    pub async fn latest_approval(
        &self,
        feature_dir: &str,
        subject: &str,
    ) -> Result<Option<ApprovalRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT feature_dir, subject, path, content_hash, run_id, stage, approved_at_ms \
             FROM approvals WHERE feature_dir = ? AND subject = ? ORDER BY id DESC LIMIT 1",
        )
        .bind(feature_dir)
        .bind(subject)
        .fetch_optional(self.pool())
        .await
        .map_err(|error| self.error("reading approvals", error))?;
        row.map(|row| {
            Ok(ApprovalRecord {
                feature_dir: self.column(&row, "feature_dir")?,
                subject: self.column(&row, "subject")?,
                path: self.column(&row, "path")?,
                content_hash: self.column(&row, "content_hash")?,
                run_id: self.column(&row, "run_id")?,
                stage: self.column(&row, "stage")?,
                approved_at_ms: self.column(&row, "approved_at_ms")?,
            })
        })
        .transpose()
    }
}
