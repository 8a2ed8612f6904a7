//! The `locks` table: at most one active run per feature directory and stage.
//!
//! A lock names the process that holds it: its pid, and (from schema version 2) its boot id and
//! start time, so that a later process given the same pid is not mistaken for the holder. Whether
//! the holder still lives is the caller's question (the store reads no `/proc` and sends no
//! signals), asked of the whole [`LockRecord`] through `is_alive` inside the same
//! `BEGIN IMMEDIATE` transaction that reads and replaces the row, so that two processes starting
//! the same stage at once cannot both see it free: the second waits for the first to commit and
//! then finds its lock.
//!
//! A lock left behind by a process that died (a crash, `kill -9`) is stale: the next run takes it
//! over and gets the old holder back, to mark that run interrupted. What no check can see
//! through is freed by hand: [`Store::remove_run_locks`] (`stagegate unlock RUN`).

use sqlx::sqlite::SqliteRow;

use crate::error::StoreError;
use crate::records::{LockRecord, RunUnlock};
use crate::store::Store;

/// The columns a [`LockRecord`] is read from, as a literal for `concat!` (the queries stay
/// `&'static str`).
macro_rules! lock_columns {
    () => {
        "feature_dir, stage, run_id, pid, acquired_at_ms, boot_id, start_ticks"
    };
}

impl Store {
    /// Takes the lock of `(lock.feature_dir, lock.stage)` for `lock.run_id`, in one
    /// `BEGIN IMMEDIATE` transaction.
    ///
    /// - Free: taken; `Ok(None)`.
    /// - Held by another run whose process is dead (`is_alive(&holder)` is false): taken over;
    ///   `Ok(Some(holder))`, so that the caller can mark that run interrupted.
    /// - Held by another run whose process is alive: [`StoreError::Locked`] naming that run.
    /// - Held by this same run: taken again (the holder and time replaced); `Ok(None)`. That is,
    ///   when the holder is this very process (same pid, boot id and start time) or a process of
    ///   this run that
    ///   died (a `resume` after a crash). A *live* other process of this same run (two `resume`s
    ///   of one run at once) is [`StoreError::Locked`], like any live holder.
    pub async fn acquire_lock(
        &self,
        lock: &LockRecord,
        is_alive: impl Fn(&LockRecord) -> bool,
    ) -> Result<Option<LockRecord>, StoreError> {
        let operation = "taking a run lock";
        let mut transaction = self.begin_write(operation).await?;
        let row = sqlx::query(concat!(
            "SELECT ",
            lock_columns!(),
            " FROM locks WHERE feature_dir = ? AND stage = ?"
        ))
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
                let same_process = same_run
                    && holder.pid == lock.pid
                    && holder.boot_id == lock.boot_id
                    && holder.start_ticks == lock.start_ticks;
                if !same_process && is_alive(&holder) {
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

        let start_ticks = lock
            .start_ticks
            .map(|ticks| {
                i64::try_from(ticks)
                    .map_err(|error| self.invalid("lock start time", format!("{ticks}: {error}")))
            })
            .transpose()?;
        sqlx::query(
            "INSERT INTO locks \
             (feature_dir, stage, run_id, pid, acquired_at_ms, boot_id, start_ticks) \
             VALUES (?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (feature_dir, stage) DO UPDATE SET run_id = excluded.run_id, \
             pid = excluded.pid, acquired_at_ms = excluded.acquired_at_ms, \
             boot_id = excluded.boot_id, start_ticks = excluded.start_ticks",
        )
        .bind(&lock.feature_dir)
        .bind(&lock.stage)
        .bind(&lock.run_id)
        .bind(i64::from(lock.pid))
        .bind(lock.acquired_at_ms)
        .bind(&lock.boot_id)
        .bind(start_ticks)
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

    /// Removes every lock `run_id` holds, whatever process holds it, in one `BEGIN IMMEDIATE`
    /// transaction (`stagegate unlock RUN`): for what the liveness check cannot see through (a
    /// holder on another machine sharing the directory, a row from an older schema whose pid now
    /// belongs to some other process).
    ///
    /// If `is_alive` says any of them is held by a live process, nothing is removed and those
    /// locks are returned ([`RunUnlock::HeldByLiveProcess`]); a caller that means to remove them
    /// anyway passes `|_| false`.
    pub async fn remove_run_locks(
        &self,
        run_id: &str,
        is_alive: impl Fn(&LockRecord) -> bool,
    ) -> Result<RunUnlock, StoreError> {
        let operation = "removing a run's locks";
        let mut transaction = self.begin_write(operation).await?;
        let rows = sqlx::query(concat!(
            "SELECT ",
            lock_columns!(),
            " FROM locks WHERE run_id = ? ORDER BY feature_dir, stage"
        ))
        .bind(run_id)
        .fetch_all(&mut *transaction)
        .await
        .map_err(|error| self.error(operation, error))?;
        let held = rows
            .iter()
            .map(|row| self.lock_from_row(row))
            .collect::<Result<Vec<_>, _>>()?;
        let live: Vec<LockRecord> = held.iter().filter(|lock| is_alive(lock)).cloned().collect();
        if !live.is_empty() {
            // Dropping the transaction rolls it back; nothing was written.
            return Ok(RunUnlock::HeldByLiveProcess(live));
        }
        sqlx::query("DELETE FROM locks WHERE run_id = ?")
            .bind(run_id)
            .execute(&mut *transaction)
            .await
            .map_err(|error| self.error(operation, error))?;
        transaction
            .commit()
            .await
            .map_err(|error| self.error(operation, error))?;
        Ok(RunUnlock::Removed(held))
    }

    /// Every lock held, by feature directory and stage, for `status` (a run whose lock holder is
    /// dead was interrupted).
    pub async fn locks(&self) -> Result<Vec<LockRecord>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            lock_columns!(),
            " FROM locks ORDER BY feature_dir, stage"
        ))
        .fetch_all(self.pool())
        .await
        .map_err(|error| self.error("listing run locks", error))?;
        rows.iter().map(|row| self.lock_from_row(row)).collect()
    }

    fn lock_from_row(&self, row: &SqliteRow) -> Result<LockRecord, StoreError> {
        let pid: i64 = self.column(row, "pid")?;
        let start_ticks: Option<i64> = self.column(row, "start_ticks")?;
        Ok(LockRecord {
            feature_dir: self.column(row, "feature_dir")?,
            stage: self.column(row, "stage")?,
            run_id: self.column(row, "run_id")?,
            pid: u32::try_from(pid)
                .map_err(|error| self.invalid("lock pid", format!("{pid}: {error}")))?,
            acquired_at_ms: self.column(row, "acquired_at_ms")?,
            boot_id: self.column(row, "boot_id")?,
            start_ticks: start_ticks
                .map(|ticks| {
                    u64::try_from(ticks).map_err(|error| {
                        self.invalid("lock start time", format!("{ticks}: {error}"))
                    })
                })
                .transpose()?,
        })
    }
}
