//! The `answers` table: every answer a run obtained, by call key, for `resume` to replay.
//!
//! Rows are appended (migration 0010): a run's answers are only ever read all at once, so no
//! index keyed by the call's random hash is kept up to date for them.
//!
//! Separate from the cache on purpose: the cache is a cross-run optimisation with a time to
//! live and `cache clear`; a run's own answers are its history, and a resumed run must find
//! every one of them, so that no finished call is made twice.

use std::collections::HashSet;

use sqlx::SqliteConnection;

use crate::error::StoreError;
use crate::store::Store;

impl Store {
    /// Records the answer of one call of run `run_id`; recording the same key again keeps the
    /// first answer (a call's key determines its answer for this run).
    pub async fn record_answer(
        &self,
        run_id: &str,
        key: &str,
        output: &str,
    ) -> Result<(), StoreError> {
        let operation = "recording an answer";
        let mut transaction = self.begin_write(operation).await?;
        self.record_answer_in(&mut transaction, run_id, key, output)
            .await?;
        transaction
            .commit()
            .await
            .map_err(|error| self.error(operation, error))
    }

    /// Records an answer inside `connection`'s open write transaction.
    pub(crate) async fn record_answer_in(
        &self,
        connection: &mut SqliteConnection,
        run_id: &str,
        key: &str,
        output: &str,
    ) -> Result<(), StoreError> {
        let operation = "recording an answer";
        sqlx::query("INSERT INTO answers (run_id, key, output) VALUES (?, ?, ?)")
            .bind(run_id)
            .bind(key)
            .bind(output)
            .execute(&mut *connection)
            .await
            .map_err(|error| self.write_error(operation, run_id, error))?;
        Ok(())
    }

    /// Every answer run `run_id` recorded, as `(key, output)`, in the order recorded: the first
    /// for each key.
    pub async fn answers(&self, run_id: &str) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query_as::<_, (String, String)>(
            "SELECT key, output FROM answers WHERE run_id = ? ORDER BY rowid",
        )
        .bind(run_id)
        .fetch_all(self.pool())
        .await
        .map_err(|error| self.error("reading a run's answers", error))?;
        Ok(first_for_each_key(rows))
    }
}

/// Keeps the first of the rows that share a key, in their order.
fn first_for_each_key(rows: Vec<(String, String)>) -> Vec<(String, String)> {
    let mut seen = HashSet::with_capacity(rows.len());
    rows.into_iter()
        .filter(|(key, _)| seen.insert(key.clone()))
        .collect()
}
