//! The handle on `.stagegate/`: opening the database safely, and the helpers its queries share.
//!
//! The queries themselves live in `store/`, one file per table, as further `impl Store` blocks.
//!
//! Every write runs in a `BEGIN IMMEDIATE` transaction. In WAL mode a deferred transaction that
//! reads first and writes later can fail with `SQLITE_BUSY` at once, without waiting for the busy
//! timeout, when another process committed in between; taking the write lock up front makes the
//! busy timeout apply, which is what lets two stagegate processes (a run and an `approve`) share
//! the file. It also makes a failed write (a full disk) roll back as a whole.

mod answers;
mod approvals;
mod attempts;
mod batch;
mod cache;
mod decisions;
mod events;
mod gates;
mod line_comments;
mod locks;
mod publications;
mod run_views;
mod runs;
mod texts;
mod transitions;

pub use batch::{BatchWrite, BatchWriter};
pub use run_views::{RunViewSnapshot, SavedRunView};
pub use texts::{AttemptKey, AttemptText, TextKind};
pub use transitions::{Accepted, DecisionRequest, GateDecision, Refused};

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Connection, Row, Sqlite, SqliteConnection, Transaction};

use crate::error::{SQLITE_CONSTRAINT_FOREIGNKEY, StoreError, classify, sqlite_code};
use crate::run_dir::RunDir;
use crate::schema;

const DATABASE_FILE: &str = "state.db";
const RUNS_DIRECTORY: &str = "runs";
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// SQLite allows one writer at a time whatever the pool size; a few connections let reads
/// (`status` while a run records) proceed beside a write.
pub(crate) const POOL_SIZE: u32 = 4;
/// The page size of a new database (SQLite's default is 4 KiB; a database keeps the size it was
/// created with). A wide stage appends thousands of rows per group commit, and every page
/// written costs two system calls in the log and one more at the checkpoint: with 16 KiB pages
/// a 10,000-agent stage wrote a quarter as many pages and took 12 % less time, while a cached
/// re-run and `status` read no slower.
const PAGE_SIZE: u32 = 16 * 1024;
/// Each connection's page cache, in KiB (SQLite's negative form): SQLite's default of 2 MiB
/// cannot hold the index pages a wide stage's group commits touch (text chunks are keyed by
/// hashes, so every page of that index is hot, as the answers' and cache entries' were before
/// migration 0010), and re-reading them was most of the writer's system time. It grows only as
/// pages are read.
pub(crate) const PAGE_CACHE: &str = "-16384";
/// WAL pages after which a commit copies the log into the database (SQLite's default is
/// 1,000): fewer, larger checkpoints write a hot index page once instead of once per 4 MiB.
pub(crate) const WAL_CHECKPOINT_PAGES: &str = "4000";

/// How every write transaction starts: holding the write lock from the start (see the module
/// docs).
pub(crate) const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";

/// The size of write-ahead log from which a command folds it into `state.db` as it exits.
const FOLD_LOG_FROM_BYTES: u64 = 8 << 20;

/// stagegate's durable state in `.stagegate/`: the SQLite database and the run directories.
///
/// Cloning is cheap and shares the connection pool.
#[derive(Debug, Clone)]
pub struct Store {
    pool: SqlitePool,
    state_dir: PathBuf,
    database_path: PathBuf,
    /// The hashes of the text chunks this process has committed: a group commit neither
    /// compresses nor writes them again.
    committed_chunks: std::sync::Arc<
        std::sync::Mutex<std::collections::HashSet<[u8; 32], foldhash::fast::RandomState>>,
    >,
}

impl Store {
    /// Opens (creating when absent) `<state_dir>/state.db` and `<state_dir>/runs/`, and brings the
    /// schema up to date.
    ///
    /// The connections use WAL (readers never block the writer), `busy_timeout` 5 s,
    /// `synchronous = NORMAL` (durable at every checkpoint; a power cut can lose the last
    /// transactions but never corrupts the file) and foreign keys.
    ///
    /// An existing file is first inspected through a read-only connection, so that a database
    /// from a newer stagegate ([`StoreError::NewerSchema`]) or a file that is not a database
    /// ([`StoreError::Corrupt`]) is refused before anything (switching it to WAL, say) could
    /// change a byte of it.
    pub async fn open(state_dir: &Path) -> Result<Store, StoreError> {
        let runs_directory = state_dir.join(RUNS_DIRECTORY);
        std::fs::create_dir_all(&runs_directory).map_err(|source| StoreError::CreateDir {
            path: runs_directory.clone(),
            source,
        })?;
        let database_path = state_dir.join(DATABASE_FILE);
        // Held open until the pool is: the last connection to close drops SQLite's shared
        // index of the write-ahead log, which the next one must then rebuild by reading the
        // whole log again.
        let inspector = if std::fs::symlink_metadata(&database_path).is_ok() {
            Some(inspect_existing(&database_path).await?)
        } else {
            None
        };

        let options = SqliteConnectOptions::new()
            .filename(&database_path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true)
            .page_size(PAGE_SIZE)
            .pragma("cache_size", PAGE_CACHE)
            .pragma("wal_autocheckpoint", WAL_CHECKPOINT_PAGES)
            // A multi-row insert that may stop half-way (a conflict clause, a foreign key)
            // keeps the pages it changes in a statement journal, which SQLite otherwise moves
            // to a temporary file past 64 KiB: a write system call per page of a group commit.
            .pragma("temp_store", "memory");
        let pool = SqlitePoolOptions::new()
            .max_connections(POOL_SIZE)
            .connect_with(options)
            .await
            .map_err(|error| classify(&database_path, "opening the database", error))?;
        // A database found at the current version needs no migration: skipping it spares every
        // command a write transaction (and the write lock) on its way in.
        let current = matches!(&inspector, Some((_, found)) if *found == schema::SUPPORTED_VERSION);
        if !current {
            let mut connection = pool
                .acquire()
                .await
                .map_err(|error| classify(&database_path, "opening the database", error))?;
            schema::migrate(&mut connection, &database_path).await?;
        }
        if let Some((inspector, _)) = inspector {
            // Closing a read-only connection cannot change the file; its error adds nothing.
            let _ = inspector.close().await;
        }

        Ok(Store {
            pool,
            state_dir: state_dir.to_path_buf(),
            database_path,
            committed_chunks: std::sync::Arc::default(),
        })
    }

    /// An empty store held in memory, for a command that only reads (`status`, `runs`, …) in a
    /// repository without `state_dir`: it answers every query as a store without runs would,
    /// and creates nothing on disk. `state_dir` is only named in messages.
    ///
    /// One connection, kept for the store's whole life: every connection to `:memory:` would
    /// be a database of its own, and closing the last one would drop the schema.
    pub async fn open_empty(state_dir: &Path) -> Result<Store, StoreError> {
        let database_path = state_dir.join(DATABASE_FILE);
        let options = SqliteConnectOptions::new()
            .in_memory(true)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await
            .map_err(|error| classify(&database_path, "opening an empty database", error))?;
        let mut connection = pool
            .acquire()
            .await
            .map_err(|error| classify(&database_path, "opening an empty database", error))?;
        schema::migrate(&mut connection, &database_path).await?;
        drop(connection);
        Ok(Store {
            pool,
            state_dir: state_dir.to_path_buf(),
            database_path,
            committed_chunks: std::sync::Arc::default(),
        })
    }

    /// The directory the store was opened on (`.stagegate/`).
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// `.stagegate/state.db`, for messages.
    pub fn database_path(&self) -> &Path {
        &self.database_path
    }

    /// The directory of run `run_id`: `.stagegate/runs/<run-id>/` (not created here).
    pub fn run_dir(&self, run_id: &str) -> RunDir {
        RunDir::new(self.state_dir.join(RUNS_DIRECTORY).join(run_id))
    }

    /// Closes every connection, checkpointing the WAL into `state.db`. Optional (dropping the
    /// store closes them too, in the background); useful before the process exits or before
    /// another program reads the file.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Copies the committed pages of the write-ahead log into `state.db` on a connection of
    /// its own (a passive checkpoint: it waits for no writer and no writer waits for it), so
    /// that the writer's next commit does not have to. Returns whether the whole log was
    /// copied.
    pub async fn fold_log_passively(&self) -> Result<bool, StoreError> {
        let (busy, frames, copied): (i64, i64, i64) =
            sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
                .fetch_one(&self.pool)
                .await
                .map_err(|error| self.error("folding the log into the database", error))?;
        Ok(busy == 0 && frames == copied)
    }

    /// Whether closing would fold a write-ahead log big enough to be worth it: below 8 MiB the
    /// next command reads the log faster than this one would copy it into `state.db` (a
    /// checkpoint and two fsyncs on the way out of every command).
    pub fn log_worth_folding(&self) -> bool {
        let mut log = self.database_path.clone().into_os_string();
        log.push("-wal");
        std::fs::metadata(log).is_ok_and(|log| log.len() >= FOLD_LOG_FROM_BYTES)
    }

    /// Starts a write transaction holding the write lock from the start (see the module docs).
    pub(crate) async fn begin_write(
        &self,
        operation: &'static str,
    ) -> Result<Transaction<'static, Sqlite>, StoreError> {
        self.pool
            .begin_with(BEGIN_WRITE)
            .await
            .map_err(|error| self.error(operation, error))
    }

    pub(crate) fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    pub(crate) fn error(&self, operation: &'static str, error: sqlx::Error) -> StoreError {
        classify(&self.database_path, operation, error)
    }

    /// Maps a failed insert of a record that refers to a run: a foreign-key violation means the
    /// run was never created.
    pub(crate) fn write_error(
        &self,
        operation: &'static str,
        run_id: &str,
        error: sqlx::Error,
    ) -> StoreError {
        if sqlite_code(&error) == Some(SQLITE_CONSTRAINT_FOREIGNKEY) {
            return self.unknown_run(run_id);
        }
        self.error(operation, error)
    }

    /// Reads a column, reporting a type mismatch as an invalid record of this file.
    pub(crate) fn column<'r, T>(
        &self,
        row: &'r SqliteRow,
        column: &'static str,
    ) -> Result<T, StoreError>
    where
        T: sqlx::Decode<'r, Sqlite> + sqlx::Type<Sqlite>,
    {
        row.try_get(column)
            .map_err(|error| self.invalid(column, error.to_string()))
    }

    /// Reads a column holding JSON text.
    pub(crate) fn json_column<T: DeserializeOwned>(
        &self,
        row: &SqliteRow,
        column: &'static str,
    ) -> Result<T, StoreError> {
        let text: String = self.column(row, column)?;
        serde_json::from_str(&text).map_err(|error| self.invalid(column, error.to_string()))
    }

    /// Reads a column holding one of the store's enumeration names.
    pub(crate) fn name_column<T>(
        &self,
        row: &SqliteRow,
        column: &'static str,
    ) -> Result<T, StoreError>
    where
        T: FromStr,
        T::Err: std::fmt::Display,
    {
        let text: String = self.column(row, column)?;
        text.parse()
            .map_err(|error: T::Err| self.invalid(column, error.to_string()))
    }

    pub(crate) fn invalid(&self, what: &'static str, detail: String) -> StoreError {
        StoreError::InvalidRecord {
            path: self.database_path.clone(),
            what,
            detail,
        }
    }

    /// Serializes a value for a JSON column. A `serde_json::Value` or a `Vec<String>` always
    /// serializes; the error path exists only to avoid a panic.
    pub(crate) fn to_json<T: serde::Serialize>(
        &self,
        what: &'static str,
        value: &T,
    ) -> Result<String, StoreError> {
        serde_json::to_string(value).map_err(|error| self.invalid(what, error.to_string()))
    }
}

/// Looks at an existing database without changing it: a read-only connection, no journal-mode
/// switch, two reads. Refuses newer schemas, foreign databases and files that are not databases.
/// Opens an existing database read-only and checks it is one stagegate can use; returns the
/// connection (see [`Store::open`]) and the schema version found.
async fn inspect_existing(path: &Path) -> Result<(SqliteConnection, i64), StoreError> {
    check_header(path)?;
    let options = SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .busy_timeout(BUSY_TIMEOUT);
    let mut connection = SqliteConnection::connect_with(&options)
        .await
        .map_err(|error| classify(path, "opening the database", error))?;
    match inspect_connection(&mut connection, path).await {
        Ok(found) => Ok((connection, found)),
        Err(error) => {
            // Closing a read-only connection cannot change the file; its error adds nothing.
            let _ = connection.close().await;
            Err(error)
        }
    }
}

/// A non-empty file that does not start with SQLite's header is not a database, whatever a
/// `-wal` file left beside it holds: SQLite would read the first page from that WAL and go on
/// over the garbage (and a later checkpoint would write into the file). An empty file is a new
/// database; a file that cannot be read is left to SQLite to report.
fn check_header(path: &Path) -> Result<(), StoreError> {
    use std::io::Read as _;
    const MAGIC: &[u8] = b"SQLite format 3\0";
    let mut header = Vec::with_capacity(MAGIC.len());
    let Ok(file) = std::fs::File::open(path) else {
        return Ok(());
    };
    if file
        .take(MAGIC.len() as u64)
        .read_to_end(&mut header)
        .is_err()
    {
        return Ok(());
    }
    if header.is_empty() || header == MAGIC {
        return Ok(());
    }
    Err(StoreError::Corrupt {
        path: path.to_path_buf(),
        // SQLite's own words for the same finding.
        detail: "file is not a database".to_owned(),
    })
}

async fn inspect_connection(
    connection: &mut SqliteConnection,
    path: &Path,
) -> Result<i64, StoreError> {
    // Reading the schema makes SQLite parse the header and the first page: this is where a file
    // that is not a database fails, with SQLITE_NOTADB.
    sqlx::query_scalar::<_, i64>("SELECT count(*) FROM sqlite_master")
        .fetch_one(&mut *connection)
        .await
        .map_err(|error| classify(path, "reading the schema", error))?;
    let found = schema::version(connection, path).await?;
    schema::check_version(found, path)?;
    if found == 0 {
        schema::refuse_foreign_database(connection, path).await?;
    }
    Ok(found)
}

/// Milliseconds since the Unix epoch, for the timestamps the store sets itself.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
        })
}

#[cfg(test)]
#[expect(
    clippy::unwrap_used,
    reason = "a failing test should stop at the failing line"
)]
mod tests {
    use super::*;
    use crate::records::{DecisionKind, DecisionRecord, NewRun};
    use serde_json::json;

    /// A store in `directory` holding run `r1` (also for the tests of `store`'s modules).
    pub(super) async fn store_with_run(directory: &Path) -> Store {
        let store = Store::open(&directory.join(".stagegate")).await.unwrap();
        store
            .create_run(&NewRun {
                id: "r1".to_owned(),
                feature_dir: "specs/001-login".to_owned(),
                stages: vec!["plan".to_owned()],
                settings_json: "{}".to_owned(),
                created_at_ms: 1,
            })
            .await
            .unwrap();
        store
    }

    /// Caps the database at its current size on every pooled connection, the way a full disk
    /// would stop it growing.
    async fn fill_the_disk(store: &Store) {
        let mut connections = Vec::new();
        for _ in 0..POOL_SIZE {
            connections.push(store.pool.acquire().await.unwrap());
        }
        for connection in &mut connections {
            let pages: i64 = sqlx::query_scalar("PRAGMA page_count")
                .fetch_one(&mut **connection)
                .await
                .unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "PRAGMA max_page_count = {pages}"
            )))
            .execute(&mut **connection)
            .await
            .unwrap();
        }
    }

    #[tokio::test]
    async fn a_full_disk_keeps_earlier_records_and_says_so() {
        let directory = tempfile::tempdir().unwrap();
        let store = store_with_run(directory.path()).await;
        let first = store
            .append_event("r1", "run_started", &json!({}))
            .await
            .unwrap();
        fill_the_disk(&store).await;

        let big = json!({ "output": "x".repeat(1 << 20) });
        let error = store
            .append_event("r1", "attempt_finished", &big)
            .await
            .unwrap_err();

        assert!(matches!(error, StoreError::DiskFull { .. }), "{error:?}");
        assert!(
            error.to_string().contains("free some disk space"),
            "{error}"
        );
        let events = store.events("r1").await.unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].seq, first);
    }

    #[tokio::test]
    async fn the_database_refuses_to_rewrite_decisions() {
        let directory = tempfile::tempdir().unwrap();
        let store = store_with_run(directory.path()).await;
        let decision = DecisionRecord {
            id: None,
            run_id: "r1".to_owned(),
            stage: "plan".to_owned(),
            kind: DecisionKind::Reject,
            reason: Some("too vague".to_owned()),
            note: None,
            diff: None,
            decided_by: "alice".to_owned(),
            decided_at_ms: 5,
        };
        store.record_decision(&decision).await.unwrap();

        for statement in [
            "UPDATE decisions SET kind = 'approve'",
            "DELETE FROM decisions",
        ] {
            let error = sqlx::raw_sql(statement)
                .execute(&store.pool)
                .await
                .unwrap_err();
            assert!(error.to_string().contains("append-only"), "{error}");
        }
        assert_eq!(
            store.decisions("r1").await.unwrap()[0].kind,
            DecisionKind::Reject
        );
    }

    #[tokio::test]
    async fn opening_records_the_supported_schema_version() {
        let directory = tempfile::tempdir().unwrap();
        let store = store_with_run(directory.path()).await;
        let version: i64 = sqlx::query_scalar("PRAGMA user_version")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(version, schema::SUPPORTED_VERSION);
        let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(journal, "wal");
    }
}
