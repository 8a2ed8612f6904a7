//! The `runs` table: one row per `stagegate run` invocation.

use sqlx::sqlite::SqliteRow;

use crate::error::{SQLITE_CONSTRAINT_PRIMARYKEY, StoreError, sqlite_code};
use crate::records::{NewRun, RunRecord, RunState};
use crate::store::{Store, now_ms};

/// The run columns, followed by the rest of the query (`sqlx::query` wants a `&'static str`);
/// `without settings` reads `null` for them instead of the run's settings.
macro_rules! select_run {
    ($rest:literal) => {
        select_run!(
            "(SELECT settings_json FROM run_settings WHERE run_id = id)",
            $rest
        )
    };
    (without settings $rest:literal) => {
        select_run!("'null'", $rest)
    };
    ($settings:literal, $rest:literal) => {
        concat!(
            "SELECT id, feature_dir, stages_json, state, current_stage, ",
            $settings,
            " AS settings_json, created_at_ms, updated_at_ms FROM runs",
            $rest
        )
    };
}

impl Store {
    /// Creates a run in state [`RunState::Running`], with no current stage yet. The record
    /// returned leaves out the settings (`settings_json` is `null`);
    /// [`Store::run_with_settings`] reads them. Settings that are not JSON are refused.
    ///
    /// Create the run before appending its events: events, attempts, gates and decisions refer
    /// to it, and the database refuses records of a run it does not know.
    pub async fn create_run(&self, run: &NewRun) -> Result<RunRecord, StoreError> {
        let operation = "creating a run";
        let record = RunRecord {
            id: run.id.clone(),
            feature_dir: run.feature_dir.clone(),
            stages: run.stages.clone(),
            state: RunState::Running,
            current_stage: None,
            // Not parsed back: `Store::run_with_settings` reads them.
            settings_json: serde_json::Value::Null,
            created_at_ms: run.created_at_ms,
            updated_at_ms: run.created_at_ms,
        };
        let stages_json = self.to_json("stages", &record.stages)?;
        serde_json::from_str::<serde::de::IgnoredAny>(&run.settings_json)
            .map_err(|error| self.invalid("settings", error.to_string()))?;
        let mut transaction = self.begin_write(operation).await?;
        let inserted = sqlx::query(
            "INSERT INTO runs (id, feature_dir, stages_json, state, current_stage, \
             created_at_ms, updated_at_ms) VALUES (?, ?, ?, ?, NULL, ?, ?)",
        )
        .bind(&record.id)
        .bind(&record.feature_dir)
        .bind(stages_json)
        .bind(record.state.as_str())
        .bind(record.created_at_ms)
        .bind(record.updated_at_ms)
        .execute(&mut *transaction)
        .await;
        if let Err(error) = inserted {
            if sqlite_code(&error) == Some(SQLITE_CONSTRAINT_PRIMARYKEY) {
                return Err(StoreError::RunExists {
                    path: self.database_path().to_path_buf(),
                    run_id: run.id.clone(),
                });
            }
            return Err(self.error(operation, error));
        }
        // Apart from the run's row, which every change of state rewrites whole.
        sqlx::query("INSERT INTO run_settings (run_id, settings_json) VALUES (?, ?)")
            .bind(&record.id)
            .bind(&run.settings_json)
            .execute(&mut *transaction)
            .await
            .map_err(|error| self.error(operation, error))?;
        transaction
            .commit()
            .await
            .map_err(|error| self.error(operation, error))?;
        Ok(record)
    }

    /// Sets a run's state and current stage; `updated_at_ms` becomes now.
    pub async fn update_run(
        &self,
        run_id: &str,
        state: RunState,
        current_stage: Option<&str>,
    ) -> Result<(), StoreError> {
        let operation = "updating a run";
        let mut transaction = self.begin_write(operation).await?;
        let updated = sqlx::query(
            "UPDATE runs SET state = ?, current_stage = ?, updated_at_ms = ? WHERE id = ?",
        )
        .bind(state.as_str())
        .bind(current_stage)
        .bind(now_ms())
        .bind(run_id)
        .execute(&mut *transaction)
        .await
        .map_err(|error| self.error(operation, error))?;
        if updated.rows_affected() == 0 {
            return Err(self.unknown_run(run_id));
        }
        transaction
            .commit()
            .await
            .map_err(|error| self.error(operation, error))
    }

    /// The run `run_id`, if it exists, without its settings (`settings_json` is `null`;
    /// [`Store::run_with_settings`] reads them): deciding a gate or taking over a lock never
    /// looks at them, and a 10,000-agent run's are 1.5 MB of JSON to parse.
    pub async fn run(&self, run_id: &str) -> Result<Option<RunRecord>, StoreError> {
        let row = sqlx::query(select_run!(without settings " WHERE id = ?"))
            .bind(run_id)
            .fetch_optional(self.pool())
            .await
            .map_err(|error| self.error("reading a run", error))?;
        row.map(|row| self.run_from_row(&row)).transpose()
    }

    /// The run `run_id` with the settings it ran with, if it exists.
    pub async fn run_with_settings(&self, run_id: &str) -> Result<Option<RunRecord>, StoreError> {
        let row = sqlx::query(select_run!(" WHERE id = ?"))
            .bind(run_id)
            .fetch_optional(self.pool())
            .await
            .map_err(|error| self.error("reading a run", error))?;
        row.map(|row| self.run_from_row(&row)).transpose()
    }

    /// Every run, newest first (by creation time, then by insertion for equal times), without
    /// its settings (`settings_json` is `null`; [`Store::run_with_settings`] reads them): a
    /// listing never shows them, and a 10,000-agent run's settings are 1.6 MB of JSON to parse.
    pub async fn runs(&self) -> Result<Vec<RunRecord>, StoreError> {
        let rows = sqlx::query(select_run!(
            without settings " ORDER BY created_at_ms DESC, rowid DESC"
        ))
        .fetch_all(self.pool())
        .await
        .map_err(|error| self.error("listing runs", error))?;
        rows.iter().map(|row| self.run_from_row(row)).collect()
    }

    pub(crate) fn unknown_run(&self, run_id: &str) -> StoreError {
        StoreError::UnknownRun {
            path: self.database_path().to_path_buf(),
            run_id: run_id.to_owned(),
        }
    }

    fn run_from_row(&self, row: &SqliteRow) -> Result<RunRecord, StoreError> {
        Ok(RunRecord {
            id: self.column(row, "id")?,
            feature_dir: self.column(row, "feature_dir")?,
            stages: self.json_column(row, "stages_json")?,
            state: self.name_column(row, "state")?,
            current_stage: self.column(row, "current_stage")?,
            settings_json: self.json_column(row, "settings_json")?,
            created_at_ms: self.column(row, "created_at_ms")?,
            updated_at_ms: self.column(row, "updated_at_ms")?,
        })
    }
}
