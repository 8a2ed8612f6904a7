//! The `cache` table: outputs of agent calls, found again by a key that hashes everything that
//! went into the call.
//!
//! The store does not compute keys or times to live; it keeps entries until they expire and hands
//! back those still valid. A run's own entries stay valid for that run whatever their age, so that
//! `resume` after a long pause at a gate does not redo finished work.
//!
//! Entries are appended (migration 0010): the cache is only ever read all at once, when a run
//! starts, so no index keyed by the call's random hash is kept up to date for it. Of several
//! entries for one key the reader takes the newest; the older ones go when they expire.

use std::collections::BTreeMap;

use sqlx::SqliteConnection;
use sqlx::sqlite::SqliteRow;

use crate::error::StoreError;
use crate::records::CacheEntry;
use crate::store::Store;

impl Store {
    /// Adds `entry`, which supersedes any earlier entry for `entry.key`.
    pub async fn put_cache(&self, entry: &CacheEntry) -> Result<(), StoreError> {
        let operation = "writing a cache entry";
        let mut transaction = self.begin_write(operation).await?;
        self.put_cache_in(&mut transaction, entry).await?;
        transaction
            .commit()
            .await
            .map_err(|error| self.error(operation, error))
    }

    /// Writes a cache entry inside `connection`'s open write transaction.
    pub(crate) async fn put_cache_in(
        &self,
        connection: &mut SqliteConnection,
        entry: &CacheEntry,
    ) -> Result<(), StoreError> {
        let operation = "writing a cache entry";
        sqlx::query(
            "INSERT INTO cache (key, phase, output, output_hash, run_id, created_at_ms, \
             expires_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&entry.key)
        .bind(&entry.phase)
        .bind(&entry.output)
        .bind(&entry.output_hash)
        .bind(&entry.run_id)
        .bind(entry.created_at_ms)
        .bind(entry.expires_at_ms)
        .execute(&mut *connection)
        .await
        .map_err(|error| self.error(operation, error))?;
        Ok(())
    }

    /// Every entry still valid at `now_ms` (`expires_at_ms > now_ms`), plus every entry recorded
    /// by `run_id` whatever its age (a resumed run reuses its own finished work even after the
    /// time to live); of those for one key, the newest. Ordered by key.
    pub async fn cache_entries(
        &self,
        now_ms: i64,
        run_id: Option<&str>,
    ) -> Result<Vec<CacheEntry>, StoreError> {
        // `run_id = NULL` is never true, so `None` selects the valid entries only.
        let rows = sqlx::query(
            "SELECT key, phase, output, output_hash, run_id, created_at_ms, expires_at_ms \
             FROM cache WHERE expires_at_ms > ? OR run_id = ? ORDER BY rowid",
        )
        .bind(now_ms)
        .bind(run_id)
        .fetch_all(self.pool())
        .await
        .map_err(|error| self.error("reading the cache", error))?;
        let mut newest = BTreeMap::new();
        for row in &rows {
            let entry = self.cache_entry_from_row(row)?;
            newest.insert(entry.key.clone(), entry);
        }
        Ok(newest.into_values().collect())
    }

    /// The entries run `run_id` wrote, expired or not: no entry is valid after the end of time.
    pub async fn cache_entries_of_run(&self, run_id: &str) -> Result<Vec<CacheEntry>, StoreError> {
        self.cache_entries(i64::MAX, Some(run_id)).await
    }

    /// Deletes the entries expired at `now_ms` (`expires_at_ms <= now_ms`); returns how many.
    pub async fn prune_cache(&self, now_ms: i64) -> Result<u64, StoreError> {
        self.delete_cache_entries(
            "pruning the cache",
            sqlx::query("DELETE FROM cache WHERE expires_at_ms <= ?").bind(now_ms),
        )
        .await
    }

    /// Deletes every entry (`--refresh`, `stagegate cache clear`); returns how many.
    pub async fn clear_cache(&self) -> Result<u64, StoreError> {
        self.delete_cache_entries("clearing the cache", sqlx::query("DELETE FROM cache"))
            .await
    }

    async fn delete_cache_entries(
        &self,
        operation: &'static str,
        query: sqlx::query::Query<'_, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>,
    ) -> Result<u64, StoreError> {
        let mut transaction = self.begin_write(operation).await?;
        let deleted = query
            .execute(&mut *transaction)
            .await
            .map_err(|error| self.error(operation, error))?;
        transaction
            .commit()
            .await
            .map_err(|error| self.error(operation, error))?;
        Ok(deleted.rows_affected())
    }

    fn cache_entry_from_row(&self, row: &SqliteRow) -> Result<CacheEntry, StoreError> {
        Ok(CacheEntry {
            key: self.column(row, "key")?,
            phase: self.column(row, "phase")?,
            output: self.column(row, "output")?,
            output_hash: self.column(row, "output_hash")?,
            run_id: self.column(row, "run_id")?,
            created_at_ms: self.column(row, "created_at_ms")?,
            expires_at_ms: self.column(row, "expires_at_ms")?,
        })
    }
}
