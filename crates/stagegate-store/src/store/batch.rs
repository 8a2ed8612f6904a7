//! Group commit: the rows the recorder writes (events, attempts, their texts, answers, cache
//! entries, opened gates), many at once in one `BEGIN IMMEDIATE` transaction.
//!
//! One transaction for everything that arrived since the last commit costs one lock, one WAL
//! append and one commit instead of one of each per row; the rows become durable together (as
//! `synchronous = NORMAL` makes them), or, on any error, none of them does. Within the
//! transaction the rows of each table go in statements of up to 32 rows, in the order given,
//! bound straight into SQLite's prepared statements on the writer's own connection (see
//! [`BatchWriter`]). Tables have no order between them inside one transaction; within a table
//! the order is kept (an attempt's start and its outcome in one batch end as the outcome,
//! events keep their sequence).

use std::collections::{HashMap, HashSet};

use foldhash::fast::RandomState as FastHash;

use rusqlite::ToSql;

use crate::error::StoreError;
use crate::error::native_error;
use crate::records::{AttemptRecord, CacheEntry, GateRecord, GateState};
use crate::store::attempts::UPDATE_ATTEMPT_ON_CONFLICT;
use crate::store::gates::OPEN_GATE;
use crate::store::texts::{ChunkHashes, NewChunk, chunked, split_own_head, stored_inline};
use crate::store::{
    AttemptText, BUSY_TIMEOUT, PAGE_CACHE, Store, TextKind, WAL_CHECKPOINT_PAGES, now_ms,
};

/// One row of a group commit.
#[derive(Debug, Clone)]
pub enum BatchWrite {
    /// [`Store::append_event`], its payload already serialised (straight from the event: a
    /// `serde_json::Value` in between cost an allocation per field of every event).
    Event {
        run_id: String,
        kind: String,
        payload_json: String,
    },
    /// [`Store::record_attempt`].
    Attempt(AttemptRecord),
    /// [`Store::record_answer`].
    Answer {
        run_id: String,
        key: String,
        output: String,
    },
    /// [`Store::put_cache`].
    Cache(CacheEntry),
    /// [`Store::open_gate`].
    OpenGate(GateRecord),
    /// An attempt's prompt, output or stderr ([`Store::attempt_text`] reads it back).
    AttemptText(AttemptText),
}

/// A batch's rows, table by table, each in the order given.
#[derive(Default)]
struct ByTable<'a> {
    events: Vec<(&'a str, &'a str, &'a str)>,
    attempts: Vec<&'a AttemptRecord>,
    /// The texts written in each attempt's row, by [`TextKind`] (`attempt_texts[i]` goes with
    /// `attempts[i]`).
    attempt_texts: Vec<[Option<RowText<'a>>; 3]>,
    /// Where each attempt's row is in `attempts`.
    attempt_rows: HashMap<AttemptRowKey<'a>, usize, FastHash>,
    answers: Vec<(&'a str, &'a str, &'a str)>,
    cache: Vec<&'a CacheEntry>,
    gates: Vec<&'a GateRecord>,
    /// The texts of attempts with no row in this batch, each with how it is stored.
    texts: Vec<(&'a AttemptText, RowText<'a>)>,
    chunks: Vec<NewChunk>,
}

impl<'a> ByTable<'a> {
    /// An attempt's later row replaces its earlier one in the same batch (its start, then its
    /// outcome): the upsert would overwrite every column anyway, so one row is written, not two.
    fn push_attempt(&mut self, attempt: &'a AttemptRecord) {
        let key = AttemptRowKey::of(attempt);
        match self.attempt_rows.get(&key) {
            Some(&index) => self.attempts[index] = attempt,
            None => {
                self.attempt_rows.insert(key, self.attempts.len());
                self.attempts.push(attempt);
                self.attempt_texts.push([None, None, None]);
            }
        }
    }

    /// A text goes into its attempt's row when that row is in the batch (the recorder always
    /// writes them together); otherwise it is written on its own.
    fn push_text(&mut self, text: &'a AttemptText, stored: RowText<'a>) {
        match self.attempt_rows.get(&AttemptRowKey::of_text(text)) {
            Some(&index) => self.attempt_texts[index][kind_index(text.kind)] = Some(stored),
            None => self.texts.push((text, stored)),
        }
    }
}

/// How one text is stored: its length, and either its chunks' hashes, concatenated, or (under
/// 512 bytes) its bytes, with no chunks.
struct RowText<'a> {
    length: i64,
    chunks: Vec<u8>,
    body: Option<&'a [u8]>,
}

/// Where a text's columns are among an attempt's ([`TextKind::IN_ROW_ORDER`]).
fn kind_index(kind: TextKind) -> usize {
    match kind {
        TextKind::Prompt => 0,
        TextKind::Output => 1,
        TextKind::Stderr => 2,
    }
}

/// The primary key of an attempt's row.
#[derive(PartialEq, Eq, Hash)]
struct AttemptRowKey<'a> {
    run_id: &'a str,
    stage: &'a str,
    phase: &'a str,
    agent: &'a str,
    attempt: u32,
}

impl<'a> AttemptRowKey<'a> {
    fn of(attempt: &'a AttemptRecord) -> Self {
        AttemptRowKey {
            run_id: &attempt.run_id,
            stage: &attempt.stage,
            phase: &attempt.phase,
            agent: &attempt.agent,
            attempt: attempt.attempt,
        }
    }

    fn of_text(text: &'a AttemptText) -> Self {
        AttemptRowKey {
            run_id: &text.key.run_id,
            stage: &text.key.stage,
            phase: &text.key.phase,
            agent: &text.key.agent,
            attempt: text.key.attempt,
        }
    }
}

/// One writer's connection, kept for all its group commits ([`Store::batch_writer`]).
///
/// A connection of SQLite's own C interface (through `rusqlite`, on the same bundled SQLite as
/// the pool's), used on the writer's thread: each row is bound straight into a prepared
/// statement, with no argument list built for it and no hand-off to a driver's worker thread.
/// Keeping it also keeps its page cache: SQLite drops a connection's cache when another
/// connection has written since.
pub struct BatchWriter {
    store: Store,
    connection: rusqlite::Connection,
    chunk_hashes: ChunkHashes,
}

impl BatchWriter {
    /// Writes `writes` in one transaction: all of them are committed when this returns `Ok`,
    /// none of them when it returns an error. Blocks the calling thread.
    pub fn write(&mut self, writes: &[BatchWrite]) -> Result<(), StoreError> {
        let Some(first_run) = writes.first().map(run_of) else {
            return Ok(());
        };
        let store = &self.store;
        let operation = "recording the run";
        let rows = store.by_table(writes, &mut self.chunk_hashes)?;
        let transaction = self
            .connection
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|error| store.error(operation, native_error(error)))?;
        insert_rows(&transaction, &rows)
            .map_err(|error| store.write_error(operation, first_run, native_error(error)))?;
        for gate in &rows.gates {
            let artifacts_json = store.to_json("gate artifacts", &gate.artifacts)?;
            open_gate(&transaction, gate, &artifacts_json).map_err(|error| {
                store.write_error("opening a gate", &gate.run_id, native_error(error))
            })?;
        }
        transaction
            .commit()
            .map_err(|error| store.error(operation, native_error(error)))?;
        if let Ok(mut committed) = store.committed_chunks.lock() {
            committed.extend(rows.chunks.iter().map(|chunk| chunk.hash));
        }
        Ok(())
    }
}

impl Store {
    /// A connection of its own for a writer's group commits (the recorder's), with the pool's
    /// settings. Blocks the calling thread while it opens.
    pub fn batch_writer(&self) -> Result<BatchWriter, StoreError> {
        let operation = "recording the run";
        let connection = open_writer(&self.database_path)
            .map_err(|error| self.error(operation, native_error(error)))?;
        Ok(BatchWriter {
            store: self.clone(),
            connection,
            chunk_hashes: ChunkHashes::default(),
        })
    }

    /// Writes `writes` in one transaction on a connection opened for it: all of them are
    /// committed when this returns `Ok`, none of them when it returns an error. Blocks the
    /// calling thread.
    pub fn write_batch(&self, writes: &[BatchWrite]) -> Result<(), StoreError> {
        self.batch_writer()?.write(writes)
    }

    /// Sorts the writes by table, serialises the events and cuts the texts into chunks
    /// (compressing only the chunks not yet committed).
    fn by_table<'a>(
        &self,
        writes: &'a [BatchWrite],
        chunk_hashes: &mut ChunkHashes,
    ) -> Result<ByTable<'a>, StoreError> {
        // Held, not cloned: a copy per batch would grow with every chunk the run committed.
        let committed = self.committed_chunks.lock().ok();
        let is_committed = |hash: &[u8; 32]| {
            committed
                .as_ref()
                .is_some_and(|committed| committed.contains(hash))
        };
        let mut seen: HashSet<[u8; 32], FastHash> = HashSet::default();
        let mut rows = ByTable::default();
        let mut texts = Vec::new();
        for write in writes {
            match write {
                BatchWrite::Event {
                    run_id,
                    kind,
                    payload_json,
                } => rows.events.push((run_id, kind, payload_json)),
                BatchWrite::Attempt(attempt) => rows.push_attempt(attempt),
                BatchWrite::Answer {
                    run_id,
                    key,
                    output,
                } => rows.answers.push((run_id, key, output)),
                BatchWrite::Cache(entry) => rows.cache.push(entry),
                BatchWrite::OpenGate(gate) => rows.gates.push(gate),
                BatchWrite::AttemptText(text) => texts.push(text),
            }
        }
        // After the rows, so that each text finds its attempt's row wherever it came.
        for text in texts {
            let length = i64::try_from(text.bytes.len()).unwrap_or(i64::MAX);
            let stored = if stored_inline(&text.bytes) {
                RowText {
                    length,
                    chunks: Vec::new(),
                    body: Some(&text.bytes),
                }
            } else {
                // A row's body, when it has chunks too, is the text's beginning (see `texts`).
                let (head, rest, joints) = split_own_head(&text.bytes, &text.joints);
                let (hashes, new) = chunked(rest, &joints, text.kind, chunk_hashes, |hash| {
                    !is_committed(hash) && seen.insert(*hash)
                });
                rows.chunks.extend(new);
                RowText {
                    length,
                    chunks: hashes,
                    body: (!head.is_empty()).then_some(head),
                }
            };
            rows.push_text(text, stored);
        }
        Ok(rows)
    }
}

/// Opens the writer's connection on `path` with the settings [`Store::open`] gives the pool's.
fn open_writer(path: &std::path::Path) -> rusqlite::Result<rusqlite::Connection> {
    use rusqlite::OpenFlags;
    let connection = rusqlite::Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    connection.busy_timeout(BUSY_TIMEOUT)?;
    // Two shapes of insert per table, the texts written alone and the gate: all kept prepared.
    connection.set_prepared_statement_cache_capacity(PREPARED_STATEMENTS);
    connection.execute_batch(&format!(
        "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
         PRAGMA cache_size = {PAGE_CACHE}; PRAGMA wal_autocheckpoint = {WAL_CHECKPOINT_PAGES}; \
         PRAGMA temp_store = memory;"
    ))?;
    Ok(connection)
}

/// The statements the writer keeps prepared: at most 20 distinct ones, with room to spare.
const PREPARED_STATEMENTS: usize = 32;

/// Rows per multi-row statement, largest first. One statement for many rows runs SQLite's
/// program for them once (its cursors opened, its table locked and checked once), and copies
/// each page it changes into its statement journal once (a multi-row insert into a STRICT
/// table may stop half-way): 128 rows took 3 % less of a 10,000-agent stage than 32, and 512
/// no less. The smaller shape keeps a small group commit from going row by row.
const ROWS_PER_STATEMENT: [usize; 2] = [128, 16];

/// The rows of `rows`, table by table.
fn insert_rows(connection: &rusqlite::Connection, rows: &ByTable<'_>) -> rusqlite::Result<()> {
    let recorded_at = now_ms();
    insert_all(
        connection,
        "INSERT INTO events (run_id, kind, payload_json, recorded_at_ms) VALUES ",
        "",
        &rows.events,
        |(run_id, kind, payload)| [run_id, kind, payload, &recorded_at],
    )?;
    // Each text as its three columns (length, chunks, body); none for a text not written.
    let attempts: Vec<_> = rows
        .attempts
        .iter()
        .zip(&rows.attempt_texts)
        .map(|(attempt, texts)| {
            let columns = texts.each_ref().map(|text| {
                (
                    text.as_ref().map(|text| text.length),
                    text.as_ref().map(|text| &text.chunks[..]),
                    text.as_ref().and_then(|text| text.body),
                )
            });
            (attempt, columns)
        })
        .collect();
    insert_all(
        connection,
        INSERT_ATTEMPT,
        &UPDATE_ATTEMPT_ON_CONFLICT,
        &attempts,
        |(attempt, [prompt, output, stderr])| {
            [
                &attempt.run_id,
                &attempt.stage,
                &attempt.phase,
                &attempt.agent,
                &attempt.attempt,
                &attempt.backend,
                &attempt.started_at_ms,
                &attempt.finished_at_ms,
                &attempt.outcome,
                &attempt.failure_reason,
                &attempt.output_hash,
                &attempt.output_bytes,
                &attempt.confidence,
                &attempt.input_tokens,
                &attempt.output_tokens,
                &attempt.cost_usd,
                &prompt.0,
                &prompt.1,
                &prompt.2,
                &output.0,
                &output.1,
                &output.2,
                &stderr.0,
                &stderr.1,
                &stderr.2,
            ]
        },
    )?;
    insert_all(
        connection,
        "INSERT INTO answers (run_id, key, output) VALUES ",
        "",
        &rows.answers,
        |(run_id, key, output)| [run_id, key, output],
    )?;
    insert_all(
        connection,
        "INSERT INTO cache (key, phase, output, output_hash, run_id, created_at_ms, \
         expires_at_ms) VALUES ",
        "",
        &rows.cache,
        |entry| {
            [
                &entry.key,
                &entry.phase,
                &entry.output,
                &entry.output_hash,
                &entry.run_id,
                &entry.created_at_ms,
                &entry.expires_at_ms,
            ]
        },
    )?;
    insert_all(
        connection,
        "INSERT OR IGNORE INTO text_chunks (hash, codec, length, body) VALUES ",
        "",
        &rows.chunks,
        |chunk| [&chunk.hash, &chunk.codec, &chunk.length, &chunk.body],
    )?;
    for (text, stored) in &rows.texts {
        write_text_alone(connection, text, stored)?;
    }
    Ok(())
}

/// Inserts `rows` with the statement `head` (up to `VALUES `), one `(?, …)` of `N` values per
/// row and `tail`: as many rows per statement as [`ROWS_PER_STATEMENT`] allows, the rest one
/// by one (three shapes of statement per table, all kept prepared).
fn insert_all<T, const N: usize>(
    connection: &rusqlite::Connection,
    head: &str,
    tail: &str,
    rows: &[T],
    values: impl for<'r> Fn(&'r T) -> [&'r dyn ToSql; N],
) -> rusqlite::Result<()> {
    let mut rest = rows;
    for size in ROWS_PER_STATEMENT {
        let mut groups = rest.chunks_exact(size);
        if groups.len() > 0 {
            let mut insert = connection.prepare_cached(&statement(head, N, size, tail))?;
            for group in &mut groups {
                for (row_index, row) in group.iter().enumerate() {
                    for (column, value) in values(row).into_iter().enumerate() {
                        insert.raw_bind_parameter(row_index * N + column + 1, value)?;
                    }
                }
                insert.raw_execute()?;
            }
        }
        rest = groups.remainder();
    }
    if !rest.is_empty() {
        let mut insert = connection.prepare_cached(&statement(head, N, 1, tail))?;
        for row in rest {
            insert.execute(&values(row)[..])?;
        }
    }
    Ok(())
}

/// `head`, `rows` groups of `columns` placeholders, and `tail`.
fn statement(head: &str, columns: usize, rows: usize, tail: &str) -> String {
    let row = format!("({})", vec!["?"; columns].join(", "));
    format!("{head}{}{tail}", vec![row; rows].join(", "))
}

/// An attempt's row with its texts, up to its values; a later row of the same attempt updates
/// it ([`UPDATE_ATTEMPT_ON_CONFLICT`]).
const INSERT_ATTEMPT: &str = "INSERT INTO attempts (run_id, stage, phase, agent, attempt, \
     backend, started_at_ms, finished_at_ms, outcome, failure_reason, output_hash, output_bytes, \
     confidence, input_tokens, output_tokens, cost_usd, prompt_length, prompt_chunks, \
     prompt_body, output_length, output_chunks, output_body, stderr_length, stderr_chunks, \
     stderr_body) VALUES ";

/// Writes a text whose attempt's row is not in the batch: into that row when it exists,
/// otherwise into `attempt_texts` (which readers look at when the row has none).
fn write_text_alone(
    connection: &rusqlite::Connection,
    text: &AttemptText,
    stored: &RowText<'_>,
) -> rusqlite::Result<()> {
    use rusqlite::params;
    let kind = text.kind.as_str();
    let key = &text.key;
    // `kind` is one of three fixed words, never input.
    let updated = connection
        .prepare_cached(&format!(
            "UPDATE attempts SET {kind}_length = ?, {kind}_chunks = ?, {kind}_body = ? \
             WHERE run_id = ? AND stage = ? AND phase = ? AND agent = ? AND attempt = ?"
        ))?
        .execute(params![
            stored.length,
            stored.chunks,
            stored.body,
            key.run_id,
            key.stage,
            key.phase,
            key.agent,
            i64::from(key.attempt),
        ])?;
    if updated > 0 {
        return Ok(());
    }
    connection
        .prepare_cached(
            "INSERT OR REPLACE INTO attempt_texts \
             (run_id, stage, phase, agent, attempt, kind, length, chunks, body) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )?
        .execute(params![
            key.run_id,
            key.stage,
            key.phase,
            key.agent,
            i64::from(key.attempt),
            kind,
            stored.length,
            stored.chunks,
            stored.body,
        ])?;
    Ok(())
}

/// Opens a gate as [`Store::open_gate`] does, inside the batch's transaction.
fn open_gate(
    connection: &rusqlite::Connection,
    gate: &GateRecord,
    artifacts_json: &str,
) -> rusqlite::Result<()> {
    connection
        .prepare_cached(OPEN_GATE)?
        .execute(rusqlite::params![
            gate.run_id,
            gate.stage,
            gate.question,
            artifacts_json,
            GateState::Pending.as_str(),
            gate.opened_at_ms,
        ])?;
    Ok(())
}

/// The run a write belongs to, for the error of a write to a run that does not exist.
fn run_of(write: &BatchWrite) -> &str {
    match write {
        BatchWrite::Event { run_id, .. } | BatchWrite::Answer { run_id, .. } => run_id,
        BatchWrite::Attempt(attempt) => &attempt.run_id,
        BatchWrite::Cache(entry) => &entry.run_id,
        BatchWrite::OpenGate(gate) => &gate.run_id,
        BatchWrite::AttemptText(text) => &text.key.run_id,
    }
}
