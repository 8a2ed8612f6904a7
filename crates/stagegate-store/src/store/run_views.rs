//! The `run_views` table: a snapshot of each run's folded view, so that `status` folds only the
//! events after it instead of a run's whole log.
//!
//! The store keeps the view as opaque JSON with the version of its serialisation (`format`):
//! what a view is belongs to the binary. A reader asks for one format and gets nothing for a
//! snapshot of another, and then folds the whole log.

use crate::error::StoreError;
use crate::records::EventRecord;
use crate::store::Store;

/// One run's stored view: the fold of its events up to `through_seq`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunViewSnapshot {
    pub run_id: String,
    /// The sequence number of the last event the view covers.
    pub through_seq: i64,
    pub view_json: String,
}

/// What [`Store::save_run_view_covering`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SavedRunView {
    /// Saved, covering the events through this sequence number.
    Saved { through_seq: i64 },
    /// Not saved: the log after `after_seq` holds another number of events than the view
    /// took in (another process appended one, or one was not committed).
    Mismatch { stored_events: i64 },
}

impl Store {
    /// Writes `snapshot` as run `run_id`'s view in `format`, replacing an older one. A snapshot
    /// of the same format covering more of the log is kept: a view never goes back.
    pub async fn save_run_view(
        &self,
        snapshot: &RunViewSnapshot,
        format: i64,
    ) -> Result<(), StoreError> {
        let operation = "saving a run's view";
        let mut transaction = self.begin_write(operation).await?;
        upsert(self, &mut transaction, snapshot, format).await?;
        transaction
            .commit()
            .await
            .map_err(|error| self.error(operation, error))
    }

    /// Saves the view of run `run_id` folded from a view through `after_seq` and the
    /// `events` events that followed it, if the log after `after_seq` holds exactly that
    /// many: then they are the ones the view took in (the caller took in only events it knows
    /// were stored), and the snapshot covers the log through its last event.
    pub async fn save_run_view_covering(
        &self,
        run_id: &str,
        after_seq: i64,
        events: usize,
        format: i64,
        view_json: String,
    ) -> Result<SavedRunView, StoreError> {
        let operation = "saving a run's view";
        let mut transaction = self.begin_write(operation).await?;
        let row = sqlx::query(
            "SELECT count(*) AS stored, max(seq) AS last FROM events WHERE run_id = ? AND seq > ?",
        )
        .bind(run_id)
        .bind(after_seq)
        .fetch_one(&mut *transaction)
        .await
        .map_err(|error| self.error(operation, error))?;
        let stored: i64 = self.column(&row, "stored")?;
        let last: Option<i64> = self.column(&row, "last")?;
        if usize::try_from(stored).ok() != Some(events) {
            // Nothing written: dropping the transaction rolls it back.
            return Ok(SavedRunView::Mismatch {
                stored_events: stored,
            });
        }
        let snapshot = RunViewSnapshot {
            run_id: run_id.to_owned(),
            through_seq: last.unwrap_or(after_seq),
            view_json,
        };
        upsert(self, &mut transaction, &snapshot, format).await?;
        transaction
            .commit()
            .await
            .map_err(|error| self.error(operation, error))?;
        Ok(SavedRunView::Saved {
            through_seq: snapshot.through_seq,
        })
    }

    /// Run `run_id`'s stored view in `format`, if there is one, and the events after it (all
    /// of them without one), in sequence order: read in one transaction, so the events start
    /// right after the view whatever another process saves meanwhile.
    pub async fn run_view_with_tail(
        &self,
        run_id: &str,
        format: i64,
    ) -> Result<(Option<RunViewSnapshot>, Vec<EventRecord>), StoreError> {
        let operation = "reading a run's view";
        let mut transaction = self
            .pool()
            .begin()
            .await
            .map_err(|error| self.error(operation, error))?;
        let row = sqlx::query(
            "SELECT run_id, through_seq, view_json FROM run_views WHERE run_id = ? AND format = ?",
        )
        .bind(run_id)
        .bind(format)
        .fetch_optional(&mut *transaction)
        .await
        .map_err(|error| self.error(operation, error))?;
        let snapshot = row.map(|row| self.snapshot_from_row(&row)).transpose()?;
        let rows = sqlx::query(
            "SELECT seq, run_id, kind, payload_json, recorded_at_ms FROM events \
             WHERE run_id = ? AND seq > ? ORDER BY seq",
        )
        .bind(run_id)
        .bind(snapshot.as_ref().map_or(0, |snapshot| snapshot.through_seq))
        .fetch_all(&mut *transaction)
        .await
        .map_err(|error| self.error("reading events", error))?;
        let tail = rows
            .iter()
            .map(|row| self.event_from_row(row))
            .collect::<Result<_, _>>()?;
        // Only read: ending the transaction either way changes nothing.
        let _ = transaction.rollback().await;
        Ok((snapshot, tail))
    }

    /// Every run's stored view in `format` (in no particular order), and the events no such
    /// view covers, of every run, in sequence order: those after each run's view, and all of a
    /// run without one. Read in one transaction, like [`Store::run_view_with_tail`].
    ///
    /// The tails are driven by `runs` (`CROSS JOIN` keeps SQLite from scanning the whole log
    /// in `seq` order instead), so each is a range of the `events_by_run` index.
    pub async fn run_views_with_tails(
        &self,
        format: i64,
    ) -> Result<(Vec<RunViewSnapshot>, Vec<EventRecord>), StoreError> {
        let operation = "reading the runs' views";
        let mut transaction = self
            .pool()
            .begin()
            .await
            .map_err(|error| self.error(operation, error))?;
        let rows =
            sqlx::query("SELECT run_id, through_seq, view_json FROM run_views WHERE format = ?")
                .bind(format)
                .fetch_all(&mut *transaction)
                .await
                .map_err(|error| self.error(operation, error))?;
        let snapshots = rows
            .iter()
            .map(|row| self.snapshot_from_row(row))
            .collect::<Result<_, _>>()?;
        let rows = sqlx::query(
            "SELECT e.seq, e.run_id, e.kind, e.payload_json, e.recorded_at_ms \
             FROM runs r \
             LEFT JOIN run_views v ON v.run_id = r.id AND v.format = ? \
             CROSS JOIN events e ON e.run_id = r.id AND e.seq > COALESCE(v.through_seq, 0) \
             ORDER BY e.seq",
        )
        .bind(format)
        .fetch_all(&mut *transaction)
        .await
        .map_err(|error| self.error("reading events", error))?;
        let tails = rows
            .iter()
            .map(|row| self.event_from_row(row))
            .collect::<Result<_, _>>()?;
        // Only read: ending the transaction either way changes nothing.
        let _ = transaction.rollback().await;
        Ok((snapshots, tails))
    }

    fn snapshot_from_row(
        &self,
        row: &sqlx::sqlite::SqliteRow,
    ) -> Result<RunViewSnapshot, StoreError> {
        Ok(RunViewSnapshot {
            run_id: self.column(row, "run_id")?,
            through_seq: self.column(row, "through_seq")?,
            view_json: self.column(row, "view_json")?,
        })
    }
}

async fn upsert(
    store: &Store,
    connection: &mut sqlx::SqliteConnection,
    snapshot: &RunViewSnapshot,
    format: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO run_views (run_id, through_seq, format, view_json) VALUES (?, ?, ?, ?) \
         ON CONFLICT (run_id) DO UPDATE SET through_seq = excluded.through_seq, \
         format = excluded.format, view_json = excluded.view_json \
         WHERE excluded.format != run_views.format \
         OR excluded.through_seq >= run_views.through_seq",
    )
    .bind(&snapshot.run_id)
    .bind(snapshot.through_seq)
    .bind(format)
    .bind(&snapshot.view_json)
    .execute(connection)
    .await
    .map(|_| ())
    .map_err(|error| store.write_error("saving a run's view", &snapshot.run_id, error))
}

#[cfg(test)]
#[expect(
    clippy::unwrap_used,
    reason = "a failing test should stop at the failing line"
)]
mod tests {
    use serde_json::json;
    use sqlx::Row as _;

    use super::*;
    use crate::records::NewRun;

    async fn store_with_runs(directory: &std::path::Path, runs: &[&str]) -> Store {
        let store = Store::open(&directory.join(".stagegate")).await.unwrap();
        for (index, id) in runs.iter().enumerate() {
            store
                .create_run(&NewRun {
                    id: (*id).to_owned(),
                    feature_dir: "specs/001-login".to_owned(),
                    stages: vec!["plan".to_owned()],
                    settings_json: "{}".to_owned(),
                    created_at_ms: i64::try_from(index).unwrap(),
                })
                .await
                .unwrap();
        }
        store
    }

    async fn append(store: &Store, run_id: &str, n: i64) -> i64 {
        store
            .append_event(run_id, "noted", &json!({ "n": n }))
            .await
            .unwrap()
    }

    async fn view_of(store: &Store, run_id: &str, format: i64) -> Option<RunViewSnapshot> {
        store.run_view_with_tail(run_id, format).await.unwrap().0
    }

    fn snapshot(run_id: &str, through_seq: i64, view_json: &str) -> RunViewSnapshot {
        RunViewSnapshot {
            run_id: run_id.to_owned(),
            through_seq,
            view_json: view_json.to_owned(),
        }
    }

    #[tokio::test]
    async fn a_view_is_read_back_in_its_format_only() {
        let directory = tempfile::tempdir().unwrap();
        let store = store_with_runs(directory.path(), &["r1", "r2"]).await;
        store
            .save_run_view(&snapshot("r1", 3, "{\"a\":1}"), 1)
            .await
            .unwrap();

        assert_eq!(
            view_of(&store, "r1", 1).await,
            Some(snapshot("r1", 3, "{\"a\":1}"))
        );
        assert_eq!(view_of(&store, "r1", 2).await, None);
        assert_eq!(view_of(&store, "r2", 1).await, None);
        assert_eq!(
            store.run_views_with_tails(1).await.unwrap().0,
            [snapshot("r1", 3, "{\"a\":1}")]
        );
        assert!(store.run_views_with_tails(2).await.unwrap().0.is_empty());
    }

    #[tokio::test]
    async fn a_view_never_goes_back_within_its_format() {
        let directory = tempfile::tempdir().unwrap();
        let store = store_with_runs(directory.path(), &["r1"]).await;
        store
            .save_run_view(&snapshot("r1", 5, "new"), 1)
            .await
            .unwrap();
        store
            .save_run_view(&snapshot("r1", 4, "old"), 1)
            .await
            .unwrap();
        assert_eq!(
            view_of(&store, "r1", 1).await,
            Some(snapshot("r1", 5, "new"))
        );
        // Another format replaces it whatever it covers.
        store
            .save_run_view(&snapshot("r1", 2, "other"), 2)
            .await
            .unwrap();
        assert_eq!(view_of(&store, "r1", 1).await, None);
        assert_eq!(
            view_of(&store, "r1", 2).await,
            Some(snapshot("r1", 2, "other"))
        );
    }

    #[tokio::test]
    async fn a_view_of_an_unknown_run_is_refused_with_the_run_named() {
        let directory = tempfile::tempdir().unwrap();
        let store = store_with_runs(directory.path(), &[]).await;
        let error = store
            .save_run_view(&snapshot("nope", 1, "{}"), 1)
            .await
            .unwrap_err();
        assert!(matches!(error, StoreError::UnknownRun { .. }), "{error:?}");
    }

    #[tokio::test]
    async fn a_covering_view_is_saved_only_when_the_log_holds_what_it_took_in() {
        let directory = tempfile::tempdir().unwrap();
        let store = store_with_runs(directory.path(), &["r1", "r2"]).await;
        append(&store, "r1", 1).await;
        append(&store, "r2", 1).await;
        let second = append(&store, "r1", 2).await;

        assert_eq!(
            store
                .save_run_view_covering("r1", 0, 2, 1, "two".to_owned())
                .await
                .unwrap(),
            SavedRunView::Saved {
                through_seq: second
            }
        );
        assert_eq!(
            view_of(&store, "r1", 1).await,
            Some(snapshot("r1", second, "two"))
        );

        // Another process appended an event the view did not take in: nothing is written.
        append(&store, "r1", 3).await;
        assert_eq!(
            store
                .save_run_view_covering("r1", second, 0, 1, "stale".to_owned())
                .await
                .unwrap(),
            SavedRunView::Mismatch { stored_events: 1 }
        );
        assert_eq!(
            view_of(&store, "r1", 1).await,
            Some(snapshot("r1", second, "two"))
        );

        // A view of a run with nothing after it covers through where it started.
        assert_eq!(
            store
                .save_run_view_covering("r2", 0, 0, 1, "empty".to_owned())
                .await
                .unwrap(),
            SavedRunView::Mismatch { stored_events: 1 }
        );
        let directory = tempfile::tempdir().unwrap();
        let fresh = store_with_runs(directory.path(), &["r3"]).await;
        assert_eq!(
            fresh
                .save_run_view_covering("r3", 0, 0, 1, "empty".to_owned())
                .await
                .unwrap(),
            SavedRunView::Saved { through_seq: 0 }
        );
    }

    #[tokio::test]
    async fn the_tails_are_the_events_after_each_runs_view() {
        let directory = tempfile::tempdir().unwrap();
        let store = store_with_runs(directory.path(), &["r1", "r2", "r3"]).await;
        append(&store, "r1", 1).await;
        let r2_first = append(&store, "r2", 1).await;
        let r1_second = append(&store, "r1", 2).await;
        let r3_first = append(&store, "r3", 1).await;
        let r2_second = append(&store, "r2", 2).await;
        // r1 is covered whole, r2 through its first event, r3 only by a view of another format.
        store
            .save_run_view(&snapshot("r1", r1_second, "{}"), 1)
            .await
            .unwrap();
        store
            .save_run_view(&snapshot("r2", r2_first, "{}"), 1)
            .await
            .unwrap();
        store
            .save_run_view(&snapshot("r3", r3_first, "{}"), 2)
            .await
            .unwrap();

        let tail: Vec<(String, i64)> = store
            .run_views_with_tails(1)
            .await
            .unwrap()
            .1
            .into_iter()
            .map(|event| (event.run_id, event.seq))
            .collect();
        assert_eq!(
            tail,
            [("r3".to_owned(), r3_first), ("r2".to_owned(), r2_second)]
        );
        let (view, tail) = store.run_view_with_tail("r2", 1).await.unwrap();
        assert_eq!(view, Some(snapshot("r2", r2_first, "{}")));
        assert_eq!(
            tail.iter().map(|event| event.seq).collect::<Vec<_>>(),
            [r2_second]
        );
        let (view, tail) = store.run_view_with_tail("r3", 1).await.unwrap();
        assert_eq!(view, None);
        assert_eq!(
            tail.iter().map(|event| event.seq).collect::<Vec<_>>(),
            [r3_first]
        );
    }

    #[tokio::test]
    async fn the_tail_query_reads_each_run_through_the_index() {
        let directory = tempfile::tempdir().unwrap();
        let store = store_with_runs(directory.path(), &["r1"]).await;
        let plan: Vec<String> = sqlx::query(
            "EXPLAIN QUERY PLAN SELECT e.seq FROM runs r \
             LEFT JOIN run_views v ON v.run_id = r.id AND v.format = 1 \
             CROSS JOIN events e ON e.run_id = r.id AND e.seq > COALESCE(v.through_seq, 0) \
             ORDER BY e.seq",
        )
        .fetch_all(store.pool())
        .await
        .unwrap()
        .iter()
        .map(|row| row.get::<String, _>("detail"))
        .collect();
        assert!(
            plan.iter()
                .any(|step| step.contains("events_by_run") && step.contains("seq>")),
            "{plan:?}"
        );
    }
}
