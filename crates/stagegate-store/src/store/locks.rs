//! The `locks` table: at most one active run per feature directory and stage.
//!
//! A lock names the process that holds it. Whether that process still lives is the caller's
//! question (the store cannot send signals), asked through `is_alive` inside the same
//! `BEGIN IMMEDIATE` transaction that reads and replaces the row, so that two processes starting
//! the same stage at once cannot both see it free: the second waits for the first to commit and
//! then finds its lock.
//!
//! A lock left behind by a process that died (a crash, `kill -9`) is stale: the next run takes it
//! over and gets the old holder back, to mark that run interrupted.

use sqlx::sqlite::SqliteRow;

use crate::error::StoreError;
use crate::records::LockRecord;
use crate::store::Store;

impl Store {
    /// Takes the lock of `(lock.feature_dir, lock.stage)` for `lock.run_id`, in one
    /// `BEGIN IMMEDIATE` transaction.
    ///
    /// - Free: taken; `Ok(None)`.
    /// - Held by another run whose process is dead (`is_alive(holder.pid)` is false): taken over;
    ///   `Ok(Some(holder))`, so that the caller can mark that run interrupted.
    /// - Held by another run whose process is alive: [`StoreError::Locked`] naming that run.
    /// - Held by this same run: taken again (the pid and time replaced); `Ok(None)`. That is, when
    ///   the holder is this very process (`holder.pid == lock.pid`) or a process of this run that
    ///   died (a `resume` after a crash). A *live* other process of this same run (two `resume`s
    ///   of one run at once) is [`StoreError::Locked`], like any live holder.
    pub async fn acquire_lock(
        &self,
        lock: &LockRecord,
        is_alive: impl Fn(u32) -> bool,
    ) -> Result<Option<LockRecord>, StoreError> {
        let operation = "taking a run lock";
        let mut transaction = self.begin_write(operation).await?;
        let row = sqlx::query(
            "SELECT feature_dir, stage, run_id, pid, acquired_at_ms FROM locks \
             WHERE feature_dir = ? AND stage = ?",
        )
        .bind(&lock.feature_dir)
        .bind(&lock.stage)
        .fetch_optional(&mut *transaction)
        .await
        .map_err(|error| self.error(operation, error))?;
        let holder = row.map(|row| self.lock_from_row(&row)).transpose()?;

        let taken_over = match holder {
            None => None,
            Some(holder) => {
                let same_run = holder.run_id == lock.run_id;
                let same_process = same_run && holder.pid == lock.pid;
                if !same_process && is_alive(holder.pid) {
                    // Dropping the transaction rolls it back; nothing was written.
                    return Err(StoreError::Locked {
                        feature_dir: holder.feature_dir,
                        stage: holder.stage,
                        run_id: holder.run_id,
                        pid: holder.pid,
                    });
                }
                (!same_run).then_some(holder)
            }
        };

        sqlx::query(
            "INSERT INTO locks (feature_dir, stage, run_id, pid, acquired_at_ms) \
             VALUES (?, ?, ?, ?, ?) \
             ON CONFLICT (feature_dir, stage) DO UPDATE SET run_id = excluded.run_id, \
             pid = excluded.pid, acquired_at_ms = excluded.acquired_at_ms",
        )
        .bind(&lock.feature_dir)
        .bind(&lock.stage)
        .bind(&lock.run_id)
        .bind(i64::from(lock.pid))
        .bind(lock.acquired_at_ms)
        .execute(&mut *transaction)
        .await
        .map_err(|error| self.error(operation, error))?;
        transaction
            .commit()
            .await
            .map_err(|error| self.error(operation, error))?;
        Ok(taken_over)
    }

    /// Releases the lock of `(feature_dir, stage)` if `run_id` holds it; does nothing otherwise
    /// (it was never taken, or another run took it over after this one was presumed dead).
    pub async fn release_lock(
        &self,
        feature_dir: &str,
        stage: &str,
        run_id: &str,
    ) -> Result<(), StoreError> {
        let operation = "releasing a run lock";
        let mut transaction = self.begin_write(operation).await?;
        sqlx::query("DELETE FROM locks WHERE feature_dir = ? AND stage = ? AND run_id = ?")
            .bind(feature_dir)
            .bind(stage)
            .bind(run_id)
            .execute(&mut *transaction)
            .await
            .map_err(|error| self.error(operation, error))?;
        transaction
            .commit()
            .await
            .map_err(|error| self.error(operation, error))
    }

    /// Every lock held, by feature directory and stage, for `status` (a run whose lock holder is
    /// dead was interrupted).
    pub async fn locks(&self) -> Result<Vec<LockRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT feature_dir, stage, run_id, pid, acquired_at_ms FROM locks \
             ORDER BY feature_dir, stage",
        )
        .fetch_all(self.pool())
        .await
        .map_err(|error| self.error("listing run locks", error))?;
        rows.iter().map(|row| self.lock_from_row(row)).collect()
    }

    fn lock_from_row(&self, row: &SqliteRow) -> Result<LockRecord, StoreError> {
        let pid: i64 = self.column(row, "pid")?;
        Ok(LockRecord {
            feature_dir: self.column(row, "feature_dir")?,
            stage: self.column(row, "stage")?,
            run_id: self.column(row, "run_id")?,
            pid: u32::try_from(pid)
                .map_err(|error| self.invalid("lock pid", format!("{pid}: {error}")))?,
            acquired_at_ms: self.column(row, "acquired_at_ms")?,
        })
    }
}
