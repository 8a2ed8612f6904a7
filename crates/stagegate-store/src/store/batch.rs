//! Group commit: the rows the recorder writes (events, attempts, their texts, answers, cache
//! entries, opened gates), many at once in one `BEGIN IMMEDIATE` transaction.
//!
//! One transaction for everything that arrived since the last commit costs one lock, one WAL
//! append and one commit instead of one of each per row; the rows become durable together (as
//! `synchronous = NORMAL` makes them), or, on any error, none of them does. Within the
//! transaction the rows of each table go in multi-row statements, in the order given: the
//! driver hands every statement to its worker thread and back, so a statement per row cost
//! two thread switches per row, most of what a wide stage spent recording. Tables have no
//! order between them inside one transaction; within a table the order is kept (an attempt's
//! start and its outcome in one batch end as the outcome, events keep their sequence).

use std::collections::{HashMap, HashSet};

use sqlx::pool::PoolConnection;
use sqlx::{AssertSqlSafe, QueryBuilder, Sqlite, SqliteConnection};

use crate::error::StoreError;
use crate::records::{AttemptRecord, CacheEntry, GateRecord};
use crate::store::attempts::UPDATE_ATTEMPT_ON_CONFLICT;
use crate::store::texts::{NewChunk, chunked, stored_inline};
use crate::store::{AttemptText, Store, TextKind, now_ms};

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

/// Rows per statement: the widest row (an attempt, with its texts) has 25 columns, far below
/// SQLite's limit of 32,766 bound values per statement. Each distinct statement stays prepared
/// in the connection's cache, and one of 400 rows held about 1 MB there: with 100 rows a
/// 10,000-agent stage peaks at 95–99 MB instead of 102–113 MB, for the same time.
const ROWS_PER_STATEMENT: usize = 100;

/// A batch's rows, table by table, each in the order given.
#[derive(Default)]
struct ByTable<'a> {
    events: Vec<(&'a str, &'a str, &'a str)>,
    attempts: Vec<&'a AttemptRecord>,
    /// The texts written in each attempt's row, by [`TextKind`] (`attempt_texts[i]` goes with
    /// `attempts[i]`).
    attempt_texts: Vec<[Option<RowText<'a>>; 3]>,
    /// Where each attempt's row is in `attempts`.
    attempt_rows: HashMap<AttemptRowKey<'a>, usize>,
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
/// SQLite keeps a page cache per connection, and drops it when another connection has written
/// since: commits handed to whichever pooled connection was free read their hot index pages
/// back from the log (18,000 page reads in a 10,000-agent stage, 14,500 with one connection:
/// the rest are the checkpoints'). The connection goes back to the pool when the writer is
/// dropped.
pub struct BatchWriter {
    store: Store,
    connection: PoolConnection<Sqlite>,
}

impl BatchWriter {
    /// Writes `writes` in one transaction: all of them are committed when this returns `Ok`,
    /// none of them when it returns an error.
    pub async fn write(&mut self, writes: &[BatchWrite]) -> Result<(), StoreError> {
        self.store
            .write_batch_on(&mut self.connection, writes)
            .await
    }
}

impl Store {
    /// A connection of its own for a writer's group commits (the recorder's).
    pub async fn batch_writer(&self) -> Result<BatchWriter, StoreError> {
        let connection = self
            .pool()
            .acquire()
            .await
            .map_err(|error| self.error("recording the run", error))?;
        Ok(BatchWriter {
            store: self.clone(),
            connection,
        })
    }

    /// Writes `writes` in one transaction: all of them are committed when this returns `Ok`,
    /// none of them when it returns an error.
    pub async fn write_batch(&self, writes: &[BatchWrite]) -> Result<(), StoreError> {
        self.batch_writer().await?.write(writes).await
    }

    async fn write_batch_on(
        &self,
        connection: &mut SqliteConnection,
        writes: &[BatchWrite],
    ) -> Result<(), StoreError> {
        let Some(first_run) = writes.first().map(run_of) else {
            return Ok(());
        };
        let operation = "recording the run";
        let rows = self.by_table(writes)?;
        let mut transaction = self.begin_write_on(connection, operation).await?;
        self.insert_rows(&mut transaction, &rows)
            .await
            .map_err(|error| self.write_error(operation, first_run, error))?;
        for gate in &rows.gates {
            self.open_gate_in(&mut transaction, gate).await?;
        }
        transaction
            .commit()
            .await
            .map_err(|error| self.error(operation, error))?;
        if let Ok(mut committed) = self.committed_chunks.lock() {
            committed.extend(rows.chunks.iter().map(|chunk| chunk.hash));
        }
        Ok(())
    }

    /// Sorts the writes by table, serialises the events and cuts the texts into chunks
    /// (compressing only the chunks not yet committed).
    fn by_table<'a>(&self, writes: &'a [BatchWrite]) -> Result<ByTable<'a>, StoreError> {
        // Held, not cloned: a copy per batch would grow with every chunk the run committed.
        let committed = self.committed_chunks.lock().ok();
        let is_committed = |hash: &[u8; 32]| {
            committed
                .as_ref()
                .is_some_and(|committed| committed.contains(hash))
        };
        let mut seen: HashSet<[u8; 32]> = HashSet::new();
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
                let (hashes, new) = chunked(&text.bytes, text.kind, |hash| {
                    !is_committed(hash) && seen.insert(*hash)
                });
                rows.chunks.extend(new);
                RowText {
                    length,
                    chunks: hashes,
                    body: None,
                }
            };
            rows.push_text(text, stored);
        }
        Ok(rows)
    }

    async fn insert_rows(
        &self,
        connection: &mut SqliteConnection,
        rows: &ByTable<'_>,
    ) -> Result<(), sqlx::Error> {
        let recorded_at = now_ms();
        for part in rows.events.chunks(ROWS_PER_STATEMENT) {
            let mut insert = QueryBuilder::<Sqlite>::new(
                "INSERT INTO events (run_id, kind, payload_json, recorded_at_ms) ",
            );
            insert.push_values(part, |mut row, (run_id, kind, payload)| {
                row.push_bind(run_id.to_string())
                    .push_bind(kind.to_string())
                    .push_bind(payload.to_string())
                    .push_bind(recorded_at);
            });
            insert.build().execute(&mut *connection).await?;
        }
        let attempt_rows: Vec<_> = rows.attempts.iter().zip(&rows.attempt_texts).collect();
        for part in attempt_rows.chunks(ROWS_PER_STATEMENT) {
            let mut insert = QueryBuilder::<Sqlite>::new(
                "INSERT INTO attempts (run_id, stage, phase, agent, attempt, backend, \
                 started_at_ms, finished_at_ms, outcome, failure_reason, output_hash, \
                 output_bytes, confidence, input_tokens, output_tokens, cost_usd, \
                 prompt_length, prompt_chunks, prompt_body, output_length, output_chunks, \
                 output_body, stderr_length, stderr_chunks, stderr_body) ",
            );
            insert.push_values(part, |mut row, (attempt, texts)| {
                row.push_bind(attempt.run_id.clone())
                    .push_bind(attempt.stage.clone())
                    .push_bind(attempt.phase.clone())
                    .push_bind(attempt.agent.clone())
                    .push_bind(i64::from(attempt.attempt))
                    .push_bind(attempt.backend.clone())
                    .push_bind(attempt.started_at_ms)
                    .push_bind(attempt.finished_at_ms)
                    .push_bind(attempt.outcome.clone())
                    .push_bind(attempt.failure_reason.clone())
                    .push_bind(attempt.output_hash.clone())
                    .push_bind(attempt.output_bytes)
                    .push_bind(attempt.confidence)
                    .push_bind(attempt.input_tokens)
                    .push_bind(attempt.output_tokens)
                    .push_bind(attempt.cost_usd);
                for text in texts.iter() {
                    row.push_bind(text.as_ref().map(|text| text.length))
                        .push_bind(text.as_ref().map(|text| text.chunks.clone()))
                        .push_bind(text.as_ref().and_then(|text| text.body.map(<[u8]>::to_vec)));
                }
            });
            insert.push(UPDATE_ATTEMPT_ON_CONFLICT.as_str());
            insert.build().execute(&mut *connection).await?;
        }
        for part in rows.answers.chunks(ROWS_PER_STATEMENT) {
            let mut insert =
                QueryBuilder::<Sqlite>::new("INSERT INTO answers (run_id, key, output) ");
            insert.push_values(part, |mut row, (run_id, key, output)| {
                row.push_bind(run_id.to_string())
                    .push_bind(key.to_string())
                    .push_bind(output.to_string());
            });
            insert.build().execute(&mut *connection).await?;
        }
        for part in rows.cache.chunks(ROWS_PER_STATEMENT) {
            let mut insert = QueryBuilder::<Sqlite>::new(
                "INSERT INTO cache (key, phase, output, output_hash, run_id, created_at_ms, \
                 expires_at_ms) ",
            );
            insert.push_values(part, |mut row, entry| {
                row.push_bind(entry.key.clone())
                    .push_bind(entry.phase.clone())
                    .push_bind(entry.output.clone())
                    .push_bind(entry.output_hash.clone())
                    .push_bind(entry.run_id.clone())
                    .push_bind(entry.created_at_ms)
                    .push_bind(entry.expires_at_ms);
            });
            insert.build().execute(&mut *connection).await?;
        }
        for part in rows.chunks.chunks(ROWS_PER_STATEMENT) {
            let mut insert = QueryBuilder::<Sqlite>::new(
                "INSERT OR IGNORE INTO text_chunks (hash, codec, length, body) ",
            );
            insert.push_values(part, |mut row, chunk| {
                row.push_bind(chunk.hash.to_vec())
                    .push_bind(chunk.codec)
                    .push_bind(chunk.length)
                    .push_bind(chunk.body.clone());
            });
            insert.build().execute(&mut *connection).await?;
        }
        for (text, stored) in &rows.texts {
            self.write_text_alone(connection, text, stored).await?;
        }
        Ok(())
    }

    /// Writes a text whose attempt's row is not in the batch: into that row when it exists,
    /// otherwise into `attempt_texts` (which readers look at when the row has none).
    async fn write_text_alone(
        &self,
        connection: &mut SqliteConnection,
        text: &AttemptText,
        stored: &RowText<'_>,
    ) -> Result<(), sqlx::Error> {
        let kind = text.kind.as_str();
        let key = &text.key;
        // `kind` is one of three fixed words, never input.
        let update = format!(
            "UPDATE attempts SET {kind}_length = ?, {kind}_chunks = ?, {kind}_body = ? \
             WHERE run_id = ? AND stage = ? AND phase = ? AND agent = ? AND attempt = ?"
        );
        let updated = sqlx::query(AssertSqlSafe(update))
            .bind(stored.length)
            .bind(stored.chunks.clone())
            .bind(stored.body.map(<[u8]>::to_vec))
            .bind(&key.run_id)
            .bind(&key.stage)
            .bind(&key.phase)
            .bind(&key.agent)
            .bind(i64::from(key.attempt))
            .execute(&mut *connection)
            .await?;
        if updated.rows_affected() > 0 {
            return Ok(());
        }
        sqlx::query(
            "INSERT OR REPLACE INTO attempt_texts \
             (run_id, stage, phase, agent, attempt, kind, length, chunks, body) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&key.run_id)
        .bind(&key.stage)
        .bind(&key.phase)
        .bind(&key.agent)
        .bind(i64::from(key.attempt))
        .bind(kind)
        .bind(stored.length)
        .bind(stored.chunks.clone())
        .bind(stored.body.map(<[u8]>::to_vec))
        .execute(&mut *connection)
        .await?;
        Ok(())
    }
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
