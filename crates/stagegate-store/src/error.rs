//! The store's error type.
//!
//! Every message says what went wrong, which file, and — on a `hint:` line — what the person can do
//! about it, because the CLI renders these once at the top and the person has nothing else to go on.

use std::path::{Path, PathBuf};

/// What can go wrong while reading or writing stagegate's state database.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The state directory (or its `runs/` directory) could not be created.
    #[error(
        "cannot create the state directory {}: {source}\nhint: check that the repository root is writable, or remove whatever file is in the way",
        path.display()
    )]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The database was written by a newer stagegate; this build must not touch it.
    #[error(
        "{} has schema version {found}, but this stagegate understands versions up to {supported}\nhint: upgrade stagegate; the database was left as it was",
        path.display()
    )]
    NewerSchema {
        path: PathBuf,
        found: i64,
        supported: i64,
    },

    /// The file is not an SQLite database, or SQLite reports it as damaged.
    #[error(
        "{} is not a readable stagegate database: {detail}\nhint: move {} aside (for example to {}.broken) and run again; stagegate never deletes or overwrites it",
        path.display(), path.display(), path.display()
    )]
    Corrupt { path: PathBuf, detail: String },

    /// The disk (or a quota) is full; the transaction was rolled back, earlier records are intact.
    #[error(
        "no space left while {operation} in {}; nothing of this write was kept, earlier records are intact\nhint: free some disk space and run again",
        path.display()
    )]
    DiskFull {
        path: PathBuf,
        operation: &'static str,
        #[source]
        source: sqlx::Error,
    },

    /// Another process held the database lock for longer than the busy timeout.
    #[error(
        "{} stayed locked by another process for more than 5s while {operation}\nhint: wait for the other stagegate command to finish (see `stagegate status`) and run again",
        path.display()
    )]
    Busy {
        path: PathBuf,
        operation: &'static str,
        #[source]
        source: sqlx::Error,
    },

    /// Any other database failure.
    #[error(
        "database error while {operation} in {}: {source}\nhint: check that {} and its directory are readable and writable",
        path.display(), path.display()
    )]
    Database {
        path: PathBuf,
        operation: &'static str,
        #[source]
        source: sqlx::Error,
    },

    /// A row holds a value this build cannot interpret (an unknown state name, malformed JSON).
    #[error(
        "{} holds an invalid {what}: {detail}\nhint: the database was probably edited by hand or by another tool; move it aside and run again",
        path.display()
    )]
    InvalidRecord {
        path: PathBuf,
        what: &'static str,
        detail: String,
    },

    /// A record refers to a run that was never created.
    #[error(
        "run {run_id} does not exist in {}\nhint: list the runs with `stagegate status`",
        path.display()
    )]
    UnknownRun { path: PathBuf, run_id: String },

    /// `create_run` was given an id that is already taken.
    #[error(
        "run {run_id} already exists in {}\nhint: run ids must be unique; start a new run",
        path.display()
    )]
    RunExists { path: PathBuf, run_id: String },

    /// A decision named a stage that never had a gate opened.
    #[error(
        "run {run_id} has no gate for stage {stage} in {}\nhint: list pending gates with `stagegate status`",
        path.display()
    )]
    UnknownGate {
        path: PathBuf,
        run_id: String,
        stage: String,
    },

    /// A file-system step that is part of a decision (hashing the staged artifacts, switching
    /// to the next round) failed; the decision was not recorded.
    #[error("{what}: {source}\nhint: nothing was decided; fix the cause and decide again")]
    DecisionEffect {
        what: String,
        #[source]
        source: std::io::Error,
    },

    /// Another run, whose process is still alive, is running this stage of this feature.
    #[error(
        "stage {stage} of {feature_dir} is already being run by run {run_id} (process {pid}, alive)\nhint: wait for run {run_id} to finish, or stop it with Ctrl-C in its terminal, then run again; `stagegate status` shows it\nhint: if you know run {run_id} is no longer running, `stagegate unlock {run_id}` frees its lock"
    )]
    Locked {
        feature_dir: String,
        stage: String,
        run_id: String,
        pid: u32,
    },
}

/// SQLite's primary result codes that the store tells apart (the low byte of the extended code).
const SQLITE_BUSY: i64 = 5;
const SQLITE_LOCKED: i64 = 6;
const SQLITE_CORRUPT: i64 = 11;
const SQLITE_FULL: i64 = 13;
const SQLITE_NOTADB: i64 = 26;
/// `SQLITE_CONSTRAINT_FOREIGNKEY`, an extended code.
pub(crate) const SQLITE_CONSTRAINT_FOREIGNKEY: i64 = 787;
/// `SQLITE_CONSTRAINT_PRIMARYKEY`, an extended code.
pub(crate) const SQLITE_CONSTRAINT_PRIMARYKEY: i64 = 1555;

/// The extended SQLite result code carried by `error`, if it came from SQLite.
pub(crate) fn sqlite_code(error: &sqlx::Error) -> Option<i64> {
    match error {
        sqlx::Error::Database(database_error) => database_error.code()?.parse().ok(),
        _ => None,
    }
}

/// Turns a driver error into the variant that tells the person what to do.
pub(crate) fn classify(path: &Path, operation: &'static str, error: sqlx::Error) -> StoreError {
    let path = path.to_path_buf();
    match sqlite_code(&error).map(|code| code & 0xff) {
        Some(SQLITE_CORRUPT | SQLITE_NOTADB) => StoreError::Corrupt {
            path,
            // SQLite's own words ("file is not a database"), without the driver's wrapping.
            detail: match &error {
                sqlx::Error::Database(database_error) => database_error.message().to_owned(),
                other => other.to_string(),
            },
        },
        Some(SQLITE_FULL) => StoreError::DiskFull {
            path,
            operation,
            source: error,
        },
        Some(SQLITE_BUSY | SQLITE_LOCKED) => StoreError::Busy {
            path,
            operation,
            source: error,
        },
        _ => StoreError::Database {
            path,
            operation,
            source: error,
        },
    }
}

/// An error of the batch writer's own SQLite connection, in the driver's form, so that
/// [`classify`] and the foreign-key check read its code as they read the pool's.
pub(crate) fn native_error(error: rusqlite::Error) -> sqlx::Error {
    match error {
        rusqlite::Error::SqliteFailure(failure, message) => {
            sqlx::Error::Database(Box::new(NativeFailure {
                code: failure.extended_code,
                message: message.unwrap_or_else(|| failure.to_string()),
            }))
        }
        other => sqlx::Error::Protocol(other.to_string()),
    }
}

/// SQLite's extended result code and message, from a connection the driver does not own.
#[derive(Debug)]
struct NativeFailure {
    code: i32,
    message: String,
}

impl std::fmt::Display for NativeFailure {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.message)
    }
}

impl std::error::Error for NativeFailure {}

impl sqlx::error::DatabaseError for NativeFailure {
    fn message(&self) -> &str {
        &self.message
    }

    fn code(&self) -> Option<std::borrow::Cow<'_, str>> {
        Some(self.code.to_string().into())
    }

    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }

    fn kind(&self) -> sqlx::error::ErrorKind {
        match i64::from(self.code) {
            SQLITE_CONSTRAINT_FOREIGNKEY => sqlx::error::ErrorKind::ForeignKeyViolation,
            SQLITE_CONSTRAINT_PRIMARYKEY => sqlx::error::ErrorKind::UniqueViolation,
            _ => sqlx::error::ErrorKind::Other,
        }
    }
}
