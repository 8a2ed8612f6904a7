//! The database schema and its migrations.
//!
//! `sqlx::migrate!` needs sqlx's `macros` feature, which this workspace keeps off (it pulls in
//! compile-time query checking), so the migrations are embedded with `include_str!` and applied
//! here. The schema version lives in SQLite's own `PRAGMA user_version` header field: it can be
//! read without knowing any table, which is what lets an older stagegate recognise a newer
//! database and leave it alone.

use std::path::Path;

use sqlx::{AssertSqlSafe, Connection, SqliteConnection};

use crate::error::{StoreError, classify};

/// The migrations, in order; migration `i` brings the schema to version `i + 1`.
/// Append only: a released migration is never edited.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_initial.sql"),
    include_str!("../migrations/0002_gate_transitions.sql"),
    include_str!("../migrations/0003_lock_owner.sql"),
    include_str!("../migrations/0004_line_comments.sql"),
    include_str!("../migrations/0005_attempt_texts.sql"),
    include_str!("../migrations/0006_text_chunks_rowid.sql"),
    include_str!("../migrations/0007_attempt_cost.sql"),
    include_str!("../migrations/0008_run_views.sql"),
    include_str!("../migrations/0009_short_texts_inline.sql"),
    include_str!("../migrations/0010_append_only_answers_and_cache.sql"),
    include_str!("../migrations/0011_texts_in_attempt_rows.sql"),
    include_str!("../migrations/0012_run_settings_apart.sql"),
];

/// The newest schema version this build knows.
pub(crate) const SUPPORTED_VERSION: i64 = MIGRATIONS.len() as i64;

/// Reads the schema version of the database behind `connection`.
pub(crate) async fn version(
    connection: &mut SqliteConnection,
    path: &Path,
) -> Result<i64, StoreError> {
    sqlx::query_scalar("PRAGMA user_version")
        .fetch_one(connection)
        .await
        .map_err(|error| classify(path, "reading the schema version", error))
}

/// Refuses a database written by a newer stagegate.
pub(crate) fn check_version(found: i64, path: &Path) -> Result<(), StoreError> {
    if found > SUPPORTED_VERSION {
        return Err(StoreError::NewerSchema {
            path: path.to_path_buf(),
            found,
            supported: SUPPORTED_VERSION,
        });
    }
    Ok(())
}

/// Brings the schema up to [`SUPPORTED_VERSION`] in one `BEGIN IMMEDIATE` transaction, so that two
/// stagegate processes starting at once do not both migrate, and a failed migration leaves the
/// previous version intact.
pub(crate) async fn migrate(
    connection: &mut SqliteConnection,
    path: &Path,
) -> Result<(), StoreError> {
    let operation = "migrating the schema";
    let mut transaction = Connection::begin_with(&mut *connection, crate::store::BEGIN_WRITE)
        .await
        .map_err(|error| classify(path, operation, error))?;
    // Read again under the write lock: another process may have migrated since the first look.
    let current = version(&mut transaction, path).await?;
    check_version(current, path)?;
    if current == 0 {
        refuse_foreign_database(&mut transaction, path).await?;
    }
    for (index, migration) in MIGRATIONS.iter().enumerate() {
        let target = index as i64 + 1;
        if target <= current {
            continue;
        }
        sqlx::raw_sql(*migration)
            .execute(&mut *transaction)
            .await
            .map_err(|error| classify(path, operation, error))?;
        // PRAGMA takes no bound parameters; `target` is an integer this code computed.
        sqlx::raw_sql(AssertSqlSafe(format!("PRAGMA user_version = {target}")))
            .execute(&mut *transaction)
            .await
            .map_err(|error| classify(path, operation, error))?;
    }
    transaction
        .commit()
        .await
        .map_err(|error| classify(path, operation, error))
}

/// A database with tables but no schema version belongs to some other program: adding
/// stagegate's tables to it would mix two programs' data, so it is treated like a corrupt file.
pub(crate) async fn refuse_foreign_database(
    connection: &mut SqliteConnection,
    path: &Path,
) -> Result<(), StoreError> {
    let tables: i64 = sqlx::query_scalar("SELECT count(*) FROM sqlite_master")
        .fetch_one(connection)
        .await
        .map_err(|error| classify(path, "reading the schema", error))?;
    if tables > 0 {
        return Err(StoreError::Corrupt {
            path: path.to_path_buf(),
            detail: "it is an SQLite database of another program: it has tables but no stagegate schema version".to_owned(),
        });
    }
    Ok(())
}
