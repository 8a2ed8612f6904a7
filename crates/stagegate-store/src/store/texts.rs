//! Attempt texts (prompts, outputs, stderr) as rows: `texts` holds each distinct text once,
//! by content hash, compressed when that pays; `attempt_texts` says which attempt's prompt,
//! output or stderr each one is.
//!
//! This replaces a directory and up to three files per attempt in the run directory: a wide
//! stage's agents share long prompts, and a retry often repeats an answer, so most texts are
//! stored once, and an attempt's texts are committed in the same transaction as its outcome.

use std::sync::Arc;

use sqlx::SqliteConnection;

use crate::content_hash::content_hash;
use crate::error::StoreError;
use crate::store::Store;

/// Which of an attempt's texts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextKind {
    Prompt,
    Output,
    Stderr,
}

impl TextKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TextKind::Prompt => "prompt",
            TextKind::Output => "output",
            TextKind::Stderr => "stderr",
        }
    }
}

/// The attempt a text belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptKey {
    pub run_id: String,
    pub stage: String,
    pub phase: String,
    pub agent: String,
    pub attempt: u32,
}

/// One text of one attempt, ready to write.
#[derive(Debug, Clone)]
pub struct AttemptText {
    pub key: AttemptKey,
    pub kind: TextKind,
    pub bytes: Arc<[u8]>,
}

/// Texts shorter than this are stored as they are: compressing them saves nothing.
const COMPRESS_FROM_BYTES: usize = 256;
/// DEFLATE level 1: most of the gain on prose and prompts at a fraction of the time.
const DEFLATE_LEVEL: u8 = 1;

/// A text as stored: its codec and body.
fn encode(bytes: &[u8]) -> (&'static str, Vec<u8>) {
    if bytes.len() >= COMPRESS_FROM_BYTES {
        let compressed = miniz_oxide::deflate::compress_to_vec(bytes, DEFLATE_LEVEL);
        if compressed.len() < bytes.len() {
            return ("deflate", compressed);
        }
    }
    ("raw", bytes.to_vec())
}

/// The bytes of a stored text; `length` bounds what inflating may produce.
fn decode(codec: &str, length: i64, body: Vec<u8>) -> Result<Vec<u8>, String> {
    match codec {
        "raw" => Ok(body),
        "deflate" => {
            let limit = usize::try_from(length).map_err(|_| format!("bad length {length}"))?;
            miniz_oxide::inflate::decompress_to_vec_with_limit(&body, limit)
                .map_err(|error| format!("cannot inflate: {error}"))
        }
        other => Err(format!("unknown codec {other:?}")),
    }
}

impl Store {
    /// Records one attempt text inside `connection`'s open write transaction. The text itself
    /// is written only if no attempt stored the same bytes before.
    pub(crate) async fn record_attempt_text_in(
        &self,
        connection: &mut SqliteConnection,
        text: &AttemptText,
    ) -> Result<(), StoreError> {
        let operation = "recording an attempt's text";
        let run_id = &text.key.run_id;
        let hash = content_hash(&text.bytes);
        let known: Option<i64> = sqlx::query_scalar("SELECT 1 FROM texts WHERE hash = ?")
            .bind(&hash)
            .fetch_optional(&mut *connection)
            .await
            .map_err(|error| self.write_error(operation, run_id, error))?;
        if known.is_none() {
            let (codec, body) = encode(&text.bytes);
            sqlx::query("INSERT INTO texts (hash, codec, length, body) VALUES (?, ?, ?, ?)")
                .bind(&hash)
                .bind(codec)
                .bind(i64::try_from(text.bytes.len()).unwrap_or(i64::MAX))
                .bind(body)
                .execute(&mut *connection)
                .await
                .map_err(|error| self.write_error(operation, run_id, error))?;
        }
        sqlx::query(
            "INSERT OR REPLACE INTO attempt_texts (run_id, stage, phase, agent, attempt, kind, hash)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(run_id)
        .bind(&text.key.stage)
        .bind(&text.key.phase)
        .bind(&text.key.agent)
        .bind(i64::from(text.key.attempt))
        .bind(text.kind.as_str())
        .bind(&hash)
        .execute(&mut *connection)
        .await
        .map_err(|error| self.write_error(operation, run_id, error))?;
        Ok(())
    }

    /// The `kind` text of an attempt, or `None` when the attempt recorded none (an attempt
    /// still running has no output; most have no stderr).
    pub async fn attempt_text(
        &self,
        key: &AttemptKey,
        kind: TextKind,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let operation = "reading an attempt's text";
        let row = sqlx::query_as::<_, (String, i64, Vec<u8>)>(
            "SELECT texts.codec, texts.length, texts.body
             FROM attempt_texts JOIN texts ON texts.hash = attempt_texts.hash
             WHERE run_id = ? AND stage = ? AND phase = ? AND agent = ? AND attempt = ?
               AND kind = ?",
        )
        .bind(&key.run_id)
        .bind(&key.stage)
        .bind(&key.phase)
        .bind(&key.agent)
        .bind(i64::from(key.attempt))
        .bind(kind.as_str())
        .fetch_optional(self.pool())
        .await
        .map_err(|error| self.error(operation, error))?;
        let Some((codec, length, body)) = row else {
            return Ok(None);
        };
        decode(&codec, length, body)
            .map(Some)
            .map_err(|reason| StoreError::Corrupt {
                path: self.database_path.clone(),
                detail: format!("the {} text of an attempt: {reason}", kind.as_str()),
            })
    }
}

#[cfg(test)]
#[expect(
    clippy::unwrap_used,
    reason = "a failing test should stop at the failing line"
)]
mod tests {
    use super::*;

    #[test]
    fn long_repetitive_text_is_deflated_and_comes_back_whole() {
        let text = "the same requirement, again and again. ".repeat(100);
        let (codec, body) = encode(text.as_bytes());
        assert_eq!(codec, "deflate");
        assert!(body.len() < text.len() / 5, "{} bytes", body.len());
        let back = decode(codec, text.len() as i64, body).expect("decodes");
        assert_eq!(back, text.as_bytes());
    }

    #[test]
    fn short_or_incompressible_text_is_kept_raw() {
        assert_eq!(encode(b"ok").0, "raw");
        // xorshift64: bytes with no structure for DEFLATE to find.
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        let noise: Vec<u8> = (0..4096)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        let (codec, body) = encode(&noise);
        assert_eq!(codec, "raw");
        assert_eq!(body, noise);
    }

    fn key(agent: &str, attempt: u32) -> AttemptKey {
        AttemptKey {
            run_id: "r1".to_owned(),
            stage: "plan".to_owned(),
            phase: "agent".to_owned(),
            agent: agent.to_owned(),
            attempt,
        }
    }

    fn text(agent: &str, kind: TextKind, body: &str) -> crate::BatchWrite {
        crate::BatchWrite::AttemptText(AttemptText {
            key: key(agent, 1),
            kind,
            bytes: Arc::from(body.as_bytes()),
        })
    }

    #[tokio::test]
    async fn texts_shared_by_attempts_are_stored_once_and_read_back_per_attempt() {
        let directory = tempfile::tempdir().unwrap();
        let store = Store::open(&directory.path().join(".stagegate"))
            .await
            .unwrap();
        let prompt = "Plan the feature from this spec. ".repeat(50);
        store
            .write_batch(&[
                text("analyst", TextKind::Prompt, &prompt),
                text("architect", TextKind::Prompt, &prompt),
                text("analyst", TextKind::Output, "the analyst's answer"),
                text("architect", TextKind::Output, "the architect's answer"),
            ])
            .await
            .unwrap();
        let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM texts")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(stored, 3, "the shared prompt is stored once");
        for agent in ["analyst", "architect"] {
            let read = store
                .attempt_text(&key(agent, 1), TextKind::Prompt)
                .await
                .unwrap();
            assert_eq!(read.as_deref(), Some(prompt.as_bytes()));
        }
        let output = store
            .attempt_text(&key("architect", 1), TextKind::Output)
            .await
            .unwrap();
        assert_eq!(output.as_deref(), Some(&b"the architect's answer"[..]));
        let none = store
            .attempt_text(&key("architect", 1), TextKind::Stderr)
            .await
            .unwrap();
        assert_eq!(none, None);
    }

    #[test]
    fn a_deflated_text_never_inflates_past_its_recorded_length() {
        let text = vec![b'a'; 10_000];
        let (codec, body) = encode(&text);
        assert!(decode(codec, 100, body).is_err());
    }
}
