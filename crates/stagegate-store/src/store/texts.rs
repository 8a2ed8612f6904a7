//! Attempt texts (prompts, outputs, stderr) as rows: each text is cut into content-defined
//! chunks (`chunking`), `text_chunks` holds each distinct chunk once, by hash, compressed when
//! that pays, and the attempt's row lists which chunks make its prompt, output or stderr
//! (migration 0011; `attempt_texts` before, and for a text written before its attempt's row).
//! A text shorter than 512 bytes is kept whole in that row instead (migration 0009).
//!
//! This replaces a directory and up to three files per attempt in the run directory. The agents
//! of a wide stage get prompts that differ in their first lines and share the rest (the spec,
//! the constitution, the plan…), and a retry often repeats an answer, so most of what a stage
//! says is stored once; an attempt's texts are committed in the same transaction as its outcome.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Arc;

use sqlx::AssertSqlSafe;

use crate::chunking::{Grain, chunks};
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
    /// The order of the texts' columns in an attempt's row (migration 0011).
    pub(crate) const IN_ROW_ORDER: [TextKind; 3] =
        [TextKind::Prompt, TextKind::Output, TextKind::Stderr];

    /// Prompts share most of their text with their stage's other prompts; outputs rarely do,
    /// and compress better in bigger chunks.
    fn grain(self) -> Grain {
        match self {
            TextKind::Prompt => Grain::FINE,
            TextKind::Output | TextKind::Stderr => Grain::COARSE,
        }
    }

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
    /// Ascending offsets into `bytes` where a chunk must end (and the next begin): where a role
    /// agent's prompt has its own values, so that the text between them, the same in every
    /// agent's prompt, is cut into the same chunks each time. Usually none.
    pub joints: Arc<[usize]>,
}

/// A chunk's key: its blake3 hash.
const HASH_BYTES: usize = 32;
/// Texts shorter than this are kept in their `attempt_texts` row rather than chunked: such a
/// text is one chunk anyway, rarely shared, and its chunk row and hash-index entry were two
/// random-keyed b-tree inserts per short answer. Well under the quarter page a row of that
/// WITHOUT ROWID table can hold before it overflows.
const INLINE_BELOW_BYTES: usize = 512;

/// Whether `bytes` are stored in their attempt's row ([`INLINE_BELOW_BYTES`]).
pub(crate) fn stored_inline(bytes: &[u8]) -> bool {
    bytes.len() < INLINE_BELOW_BYTES
}
/// Chunks shorter than this are stored as they are: a row of up to about a page (4 KiB) takes
/// one page whether compressed or not, and DEFLATE's set-up alone (clearing its 160 KiB of
/// tables) cost more than writing the bytes: a 10,000-agent stage spent a tenth of its
/// recording time deflating its 2 KiB prompts.
const COMPRESS_FROM_BYTES: usize = 4096;
/// DEFLATE level 1: most of the gain on prose and prompts at a fraction of the time.
const DEFLATE_LEVEL: u8 = 1;

/// A chunk as stored: its codec and body.
fn encode(bytes: &[u8]) -> (&'static str, Vec<u8>) {
    if bytes.len() >= COMPRESS_FROM_BYTES {
        let compressed = miniz_oxide::deflate::compress_to_vec(bytes, DEFLATE_LEVEL);
        if compressed.len() < bytes.len() {
            return ("deflate", compressed);
        }
    }
    ("raw", bytes.to_vec())
}

/// The bytes of a stored chunk; `length` bounds what inflating may produce.
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

/// A chunk to write: not yet in the database as far as this process knows.
#[derive(Debug)]
pub(crate) struct NewChunk {
    pub(crate) hash: [u8; HASH_BYTES],
    pub(crate) codec: &'static str,
    pub(crate) length: i64,
    pub(crate) body: Vec<u8>,
}

/// The bytes of chunks a writer remembers the hashes of, before it forgets them all.
const REMEMBERED_CHUNK_BYTES: usize = 4 << 20;

/// How many chunks seen once a writer keeps track of (a power of two).
const SEEN_ONCE_SLOTS: usize = 4096;

/// The blake3 hashes of the chunks a writer cut lately. The prompts of a stage's agents share
/// most of their chunks, and hashing each again was most of what cutting them cost (blake3
/// runs at about 1 GB/s over chunks this small). A chunk is remembered, bytes and hash, the
/// second time it comes, so that the chunks seen only once (a prompt's own lines) cost no copy;
/// finding one is a fast hash and a comparison of its bytes. Bounded: emptied when it would
/// hold more than [`REMEMBERED_CHUNK_BYTES`].
pub(crate) struct ChunkHashes {
    /// Fixed, so that which chunks share a slot does not change from run to run (a match is
    /// still only taken when the bytes are the same).
    fast: foldhash::fast::FixedState,
    /// By fast hash.
    remembered: HashMap<u64, RememberedChunk, foldhash::fast::RandomState>,
    remembered_bytes: usize,
    /// The fast hash of the last chunk seen in each slot.
    seen_once: Vec<u64>,
    /// The spans between joints lately cut, by fast hash: every role agent's prompt of a stage
    /// holds the same ones, and cutting them again was a seventh of the writer's time at
    /// 10,000 agents.
    spans: HashMap<u64, RememberedSpan, foldhash::fast::RandomState>,
    span_bytes: usize,
}

/// A span's bytes (compared on a match) and its chunks, each as its length and hash.
struct RememberedSpan {
    bytes: Box<[u8]>,
    chunks: Vec<(usize, [u8; HASH_BYTES])>,
}

/// Spans between joints shorter than this are cut each time: an agent's own values, which no
/// other prompt shares.
const REMEMBER_SPANS_FROM_BYTES: usize = 256;

/// A chunk's bytes (compared on a match, so that two chunks with one fast hash are never
/// confused) and its blake3 hash.
struct RememberedChunk {
    bytes: Box<[u8]>,
    hash: [u8; HASH_BYTES],
}

impl Default for ChunkHashes {
    fn default() -> Self {
        ChunkHashes {
            fast: foldhash::fast::FixedState::default(),
            remembered: HashMap::default(),
            remembered_bytes: 0,
            seen_once: vec![0; SEEN_ONCE_SLOTS],
            spans: HashMap::default(),
            span_bytes: 0,
        }
    }
}

impl ChunkHashes {
    /// The blake3 hash of `chunk`.
    fn of(&mut self, chunk: &[u8]) -> [u8; HASH_BYTES] {
        let fast = self.fast.hash_one(chunk);
        if let Some(remembered) = self.remembered.get(&fast)
            && *remembered.bytes == *chunk
        {
            return remembered.hash;
        }
        let hash = *blake3::hash(chunk).as_bytes();
        let slot = &mut self.seen_once[fast as usize & (SEEN_ONCE_SLOTS - 1)];
        if *slot != fast {
            *slot = fast;
            return hash;
        }
        if self.remembered_bytes + chunk.len() > REMEMBERED_CHUNK_BYTES {
            self.remembered.clear();
            self.remembered_bytes = 0;
        }
        self.remembered_bytes += chunk.len();
        let bytes = chunk.into();
        self.remembered
            .insert(fast, RememberedChunk { bytes, hash });
        hash
    }

    /// The chunks of `span`, a span between joints, each as its length and hash: remembered
    /// from the last span of the same bytes, or cut and hashed.
    fn span_chunks(&mut self, span: &[u8], grain: Grain) -> Vec<(usize, [u8; HASH_BYTES])> {
        if span.len() < REMEMBER_SPANS_FROM_BYTES {
            return self.cut(span, grain);
        }
        let fast = self.fast.hash_one(span);
        if let Some(remembered) = self.spans.get(&fast)
            && *remembered.bytes == *span
        {
            return remembered.chunks.clone();
        }
        let chunks = self.cut(span, grain);
        if self.span_bytes + span.len() > REMEMBERED_CHUNK_BYTES {
            self.spans.clear();
            self.span_bytes = 0;
        }
        self.span_bytes += span.len();
        let remembered = RememberedSpan {
            bytes: span.into(),
            chunks: chunks.clone(),
        };
        self.spans.insert(fast, remembered);
        chunks
    }

    fn cut(&mut self, bytes: &[u8], grain: Grain) -> Vec<(usize, [u8; HASH_BYTES])> {
        chunks(bytes, grain)
            .into_iter()
            .map(|chunk| (chunk.len(), self.of(chunk)))
            .collect()
    }
}

/// Cuts `bytes` into chunks: returns the chunks' hashes, concatenated (what `attempt_texts`
/// stores), and the chunks for which `is_new` says yes, encoded.
pub(crate) fn chunked(
    bytes: &[u8],
    joints: &[usize],
    kind: TextKind,
    known: &mut ChunkHashes,
    mut is_new: impl FnMut(&[u8; HASH_BYTES]) -> bool,
) -> (Vec<u8>, Vec<NewChunk>) {
    let mut hashes = Vec::new();
    let mut new = Vec::new();
    for span in spans(bytes, joints) {
        let span_chunks = if joints.is_empty() {
            known.cut(span, kind.grain())
        } else {
            known.span_chunks(span, kind.grain())
        };
        let mut start = 0;
        for (length, hash) in span_chunks {
            let piece = &span[start..start + length];
            start += length;
            hashes.extend_from_slice(&hash);
            if is_new(&hash) {
                let (codec, body) = encode(piece);
                new.push(NewChunk {
                    hash,
                    codec,
                    length: length_of(piece.len()),
                    body,
                });
            }
        }
    }
    (hashes, new)
}

/// A text's own head, the rest and the rest's joints. The head is what comes before the first
/// span between joints long enough to be shared ([`REMEMBER_SPANS_FROM_BYTES`]), when that is
/// short enough to keep in the attempt's row ([`INLINE_BELOW_BYTES`]); without joints there is
/// none. A role agent's prompt begins with the line that names its role: kept in the row, as
/// the beginning of the text (readers put a row's body before its chunks), it needs no chunk
/// row and hash-index entry of its own.
pub(crate) fn split_own_head<'a>(
    bytes: &'a [u8],
    joints: &[usize],
) -> (&'a [u8], &'a [u8], Vec<usize>) {
    let mut start = 0;
    let mut head = 0;
    for end in joints.iter().copied().chain(std::iter::once(bytes.len())) {
        if end <= start || end > bytes.len() {
            continue;
        }
        if end - start >= REMEMBER_SPANS_FROM_BYTES {
            head = start;
            break;
        }
        start = end;
    }
    if joints.is_empty() || head >= INLINE_BELOW_BYTES {
        head = 0;
    }
    let rest_joints = joints
        .iter()
        .filter(|joint| **joint > head)
        .map(|joint| joint - head)
        .collect();
    (&bytes[..head], &bytes[head..], rest_joints)
}

/// `bytes` cut at `joints` (ignoring any out of order or past the end), without empty spans.
fn spans<'a>(bytes: &'a [u8], joints: &'a [usize]) -> impl Iterator<Item = &'a [u8]> {
    let mut start = 0;
    joints
        .iter()
        .copied()
        .chain(std::iter::once(bytes.len()))
        .filter_map(move |end| {
            if end <= start || end > bytes.len() {
                return None;
            }
            let span = &bytes[start..end];
            start = end;
            Some(span)
        })
}

impl Store {
    /// The `kind` text of an attempt, or `None` when the attempt recorded none (an attempt
    /// still running has no output; most have no stderr).
    pub async fn attempt_text(
        &self,
        key: &AttemptKey,
        kind: TextKind,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let operation = "reading an attempt's text";
        let mut connection = self
            .pool()
            .acquire()
            .await
            .map_err(|error| self.error(operation, error))?;
        let kind_name = kind.as_str();
        // `kind_name` is one of three fixed words, never input.
        let in_attempt_row = format!(
            "SELECT {kind_name}_length, {kind_name}_chunks, {kind_name}_body FROM attempts
             WHERE run_id = ? AND stage = ? AND phase = ? AND agent = ? AND attempt = ?
               AND {kind_name}_length IS NOT NULL"
        );
        let mut row = sqlx::query_as::<_, (i64, Option<Vec<u8>>, Option<Vec<u8>>)>(AssertSqlSafe(
            in_attempt_row,
        ))
        .bind(&key.run_id)
        .bind(&key.stage)
        .bind(&key.phase)
        .bind(&key.agent)
        .bind(i64::from(key.attempt))
        .fetch_optional(&mut *connection)
        .await
        .map_err(|error| self.error(operation, error))?;
        if row.is_none() {
            // Written before migration 0011, or before the attempt had a row.
            row = sqlx::query_as::<_, (i64, Option<Vec<u8>>, Option<Vec<u8>>)>(
                "SELECT length, chunks, body FROM attempt_texts
                 WHERE run_id = ? AND stage = ? AND phase = ? AND agent = ? AND attempt = ?
                   AND kind = ?",
            )
            .bind(&key.run_id)
            .bind(&key.stage)
            .bind(&key.phase)
            .bind(&key.agent)
            .bind(i64::from(key.attempt))
            .bind(kind_name)
            .fetch_optional(&mut *connection)
            .await
            .map_err(|error| self.error(operation, error))?;
        }
        let Some((length, hashes, inline)) = row else {
            return Ok(None);
        };
        let hashes = hashes.unwrap_or_default();
        let corrupt = |reason: String| StoreError::Corrupt {
            path: self.database_path.clone(),
            detail: format!("the {} text of an attempt: {reason}", kind.as_str()),
        };
        let mut text = inline.unwrap_or_default();
        text.reserve(
            usize::try_from(length)
                .unwrap_or(0)
                .saturating_sub(text.len()),
        );
        for hash in hashes.chunks(HASH_BYTES) {
            let chunk = sqlx::query_as::<_, (String, i64, Vec<u8>)>(
                "SELECT codec, length, body FROM text_chunks WHERE hash = ?",
            )
            .bind(hash)
            .fetch_optional(&mut *connection)
            .await
            .map_err(|error| self.error(operation, error))?
            .ok_or_else(|| corrupt("a chunk is missing".to_owned()))?;
            let (codec, chunk_length, body) = chunk;
            text.extend(decode(&codec, chunk_length, body).map_err(corrupt)?);
        }
        if i64::try_from(text.len()).ok() != Some(length) {
            return Err(corrupt(format!(
                "{} bytes where {length} were recorded",
                text.len()
            )));
        }
        Ok(Some(text))
    }
}

fn length_of(bytes: usize) -> i64 {
    i64::try_from(bytes).unwrap_or(i64::MAX)
}

#[cfg(test)]
#[expect(
    clippy::unwrap_used,
    reason = "a failing test should stop at the failing line"
)]
mod tests {
    use super::*;

    #[test]
    fn a_remembered_chunk_hash_is_the_chunks_own_hash() {
        let mut hashes = ChunkHashes::default();
        let chunks: Vec<Vec<u8>> = (0..40)
            .map(|index| {
                format!("chunk {} of a prompt\n", index % 7)
                    .repeat(30)
                    .into_bytes()
            })
            .collect();
        // Seen once, twice (remembered) and more: always blake3's hash of the bytes.
        for chunk in chunks.iter().chain(&chunks) {
            assert_eq!(hashes.of(chunk), *blake3::hash(chunk).as_bytes());
        }
        assert_eq!(hashes.remembered.len(), 7);
    }

    #[test]
    fn remembered_chunks_are_forgotten_past_their_bound() {
        let mut hashes = ChunkHashes::default();
        let chunk = |index: usize| format!("{index:08} ").repeat(1000).into_bytes();
        let count = REMEMBERED_CHUNK_BYTES / chunk(0).len() + 10;
        for index in 0..count {
            hashes.of(&chunk(index));
            assert_eq!(
                hashes.of(&chunk(index)),
                *blake3::hash(&chunk(index)).as_bytes()
            );
            assert!(hashes.remembered_bytes <= REMEMBERED_CHUNK_BYTES);
        }
        assert!(hashes.remembered.len() < count);
    }

    #[test]
    fn long_repetitive_text_is_deflated_and_comes_back_whole() {
        let text = "the same requirement, again and again. ".repeat(200);
        let (codec, body) = encode(text.as_bytes());
        assert_eq!(codec, "deflate");
        assert!(body.len() < text.len() / 5, "{} bytes", body.len());
        let back = decode(codec, text.len() as i64, body).expect("decodes");
        assert_eq!(back, text.as_bytes());
    }

    #[test]
    fn short_or_incompressible_text_is_kept_raw() {
        assert_eq!(encode(b"ok").0, "raw");
        assert_eq!(encode("a short prompt. ".repeat(200).as_bytes()).0, "raw");
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
            joints: Arc::default(),
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
            .unwrap();
        let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM text_chunks")
            .fetch_one(store.pool())
            .await
            .unwrap();
        let prompt_chunks: std::collections::HashSet<&[u8]> =
            crate::chunking::chunks(prompt.as_bytes(), Grain::FINE)
                .into_iter()
                .collect();
        assert_eq!(
            stored,
            i64::try_from(prompt_chunks.len()).unwrap(),
            "the shared prompt is stored once, the short answers in their own rows"
        );
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

    #[tokio::test]
    async fn prompts_cut_at_their_agents_values_store_what_is_between_once() {
        let directory = tempfile::tempdir().unwrap();
        let store = Store::open(&directory.path().join(".stagegate"))
            .await
            .unwrap();
        let before = "You are the ";
        let middle = "\n## Rules\n".to_owned() + &"Cite each requirement you rely on. ".repeat(60);
        let agents: Vec<(String, String)> = (0..20)
            .map(|agent| (format!("Analyst {agent}"), format!("Check part {agent}.")))
            .collect();
        let prompts: Vec<(String, Vec<usize>)> = agents
            .iter()
            .map(|(role, task)| {
                let mut prompt = before.to_owned();
                let mut joints = vec![prompt.len()];
                prompt.push_str(role);
                joints.push(prompt.len());
                prompt.push_str(&middle);
                joints.push(prompt.len());
                prompt.push_str(task);
                joints.push(prompt.len());
                (prompt, joints)
            })
            .collect();
        let writes: Vec<crate::BatchWrite> = prompts
            .iter()
            .enumerate()
            .map(|(agent, (prompt, joints))| {
                crate::BatchWrite::AttemptText(AttemptText {
                    key: key(&format!("a{agent}"), 1),
                    kind: TextKind::Prompt,
                    bytes: Arc::from(prompt.as_bytes()),
                    joints: Arc::from(joints.as_slice()),
                })
            })
            .collect();
        store.write_batch(&writes).unwrap();
        let stored: i64 = sqlx::query_scalar("SELECT sum(length) FROM text_chunks")
            .fetch_one(store.pool())
            .await
            .unwrap();
        // The text between the values is stored once; each prompt's head (its first line, to
        // the role) is kept in its row.
        let tasks: usize = agents.iter().map(|(_, task)| task.len()).sum();
        assert_eq!(usize::try_from(stored).unwrap(), middle.len() + tasks);
        for (agent, (prompt, _)) in prompts.iter().enumerate() {
            let read = store
                .attempt_text(&key(&format!("a{agent}"), 1), TextKind::Prompt)
                .await
                .unwrap();
            assert_eq!(read.as_deref(), Some(prompt.as_bytes()));
        }
    }

    #[test]
    fn a_span_remembered_gives_the_chunks_cutting_it_gives() {
        let mut known = ChunkHashes::default();
        let span: String = (0..1000u64)
            .map(|line| format!("- FR-{line:04}: keep record {}.\n", line * line % 997))
            .collect();
        let cut = known.cut(span.as_bytes(), Grain::FINE);
        assert!(cut.len() > 1, "{}", cut.len());
        for _ in 0..3 {
            assert_eq!(known.span_chunks(span.as_bytes(), Grain::FINE), cut);
        }
        let mut other = span.clone().into_bytes();
        other[10] = b'X';
        assert_ne!(known.span_chunks(&other, Grain::FINE), cut);
    }

    #[test]
    fn a_text_with_joints_keeps_its_short_own_head_in_its_row() {
        let shared = "s".repeat(300);
        let text = format!("You are the Analyst 7{shared}Check part 7{shared}");
        let joints = [12, 21, 321, 333];
        let (head, rest, rest_joints) = split_own_head(text.as_bytes(), &joints);
        assert_eq!(head, b"You are the Analyst 7");
        assert_eq!(rest, &text.as_bytes()[21..]);
        assert_eq!(rest_joints, [300, 312]);
        // No joints, or no shared span within the row's limit: no head.
        assert!(split_own_head(text.as_bytes(), &[]).0.is_empty());
        let long_head = format!("{}{shared}", "h".repeat(600));
        assert!(
            split_own_head(long_head.as_bytes(), &[300, 600])
                .0
                .is_empty()
        );
    }

    #[test]
    fn joints_out_of_order_or_past_the_end_are_ignored() {
        let spans: Vec<&[u8]> = spans(b"abcdef", &[0, 2, 2, 1, 4, 99]).collect();
        assert_eq!(spans, [&b"ab"[..], b"cd", b"ef"]);
    }

    #[tokio::test]
    async fn prompts_that_share_their_inputs_store_the_inputs_once() {
        let directory = tempfile::tempdir().unwrap();
        let store = Store::open(&directory.path().join(".stagegate"))
            .await
            .unwrap();
        // 10 agents whose prompts differ in their first line and share 400 KB of inputs.
        let inputs: String = (0..10_000)
            .map(|line| format!("- FR-{line:05}: the system keeps record {line}.\n"))
            .collect();
        let writes: Vec<crate::BatchWrite> = (0..10)
            .map(|agent| {
                let prompt = format!("You are agent {agent}, with a role of its own.\n{inputs}");
                text(&format!("agent-{agent}"), TextKind::Prompt, &prompt)
            })
            .collect();
        store.write_batch(&writes).unwrap();
        let stored: i64 = sqlx::query_scalar("SELECT sum(length) FROM text_chunks")
            .fetch_one(store.pool())
            .await
            .unwrap();
        let stored = usize::try_from(stored).unwrap();
        assert!(
            stored < inputs.len() * 2,
            "{stored} bytes stored for 10 prompts sharing {} bytes",
            inputs.len()
        );
        let read = store
            .attempt_text(&key("agent-7", 1), TextKind::Prompt)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            String::from_utf8(read).unwrap(),
            format!("You are agent 7, with a role of its own.\n{inputs}")
        );
    }

    #[tokio::test]
    async fn a_short_text_is_kept_in_its_row_and_a_long_one_in_chunks() {
        let directory = tempfile::tempdir().unwrap();
        let store = Store::open(&directory.path().join(".stagegate"))
            .await
            .unwrap();
        let short = "x".repeat(INLINE_BELOW_BYTES - 1);
        let long = "y".repeat(INLINE_BELOW_BYTES);
        store
            .write_batch(&[
                text("short", TextKind::Output, &short),
                text("long", TextKind::Output, &long),
                text("empty", TextKind::Stderr, ""),
            ])
            .unwrap();
        let rows: Vec<(String, i64, Option<Vec<u8>>)> =
            sqlx::query_as("SELECT agent, length(chunks), body FROM attempt_texts ORDER BY agent")
                .fetch_all(store.pool())
                .await
                .unwrap();
        assert_eq!(
            rows,
            [
                ("empty".to_owned(), 0, Some(Vec::new())),
                ("long".to_owned(), HASH_BYTES as i64, None),
                ("short".to_owned(), 0, Some(short.clone().into_bytes())),
            ]
        );
        for (agent, kind, expected) in [
            ("short", TextKind::Output, &short),
            ("long", TextKind::Output, &long),
            ("empty", TextKind::Stderr, &String::new()),
        ] {
            let read = store.attempt_text(&key(agent, 1), kind).await.unwrap();
            assert_eq!(read.as_deref(), Some(expected.as_bytes()), "{agent}");
        }
    }

    #[tokio::test]
    async fn an_inline_text_that_lost_bytes_is_reported_as_corrupt() {
        let directory = tempfile::tempdir().unwrap();
        let store = Store::open(&directory.path().join(".stagegate"))
            .await
            .unwrap();
        store
            .write_batch(&[text("a", TextKind::Output, "a short answer")])
            .unwrap();
        sqlx::query("UPDATE attempt_texts SET body = X'61'")
            .execute(store.pool())
            .await
            .unwrap();
        let error = store
            .attempt_text(&key("a", 1), TextKind::Output)
            .await
            .unwrap_err();
        assert!(
            error.to_string().contains("1 bytes where 14 were recorded"),
            "{error}"
        );
    }

    fn attempt_row(agent: &str, outcome: Option<&str>) -> crate::BatchWrite {
        crate::BatchWrite::Attempt(crate::AttemptRecord {
            run_id: "r1".to_owned(),
            stage: "plan".to_owned(),
            phase: "agent".to_owned(),
            agent: agent.to_owned(),
            attempt: 1,
            backend: "mock".to_owned(),
            started_at_ms: 1,
            finished_at_ms: outcome.map(|_| 2),
            outcome: outcome.map(str::to_owned),
            failure_reason: None,
            output_hash: None,
            output_bytes: None,
            confidence: None,
            input_tokens: None,
            output_tokens: None,
            cost_usd: None,
        })
    }

    async fn rows_in_attempt_texts(store: &Store) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM attempt_texts")
            .fetch_one(store.pool())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn texts_written_with_their_attempt_live_in_its_row_and_an_outcome_keeps_the_prompt() {
        let directory = tempfile::tempdir().unwrap();
        let store = crate::store::tests::store_with_run(directory.path()).await;
        let prompt = "Plan the feature from this spec. ".repeat(50);
        // The start and its prompt in one commit, the outcome and its texts in the next.
        store
            .write_batch(&[
                attempt_row("analyst", None),
                text("analyst", TextKind::Prompt, &prompt),
            ])
            .unwrap();
        store
            .write_batch(&[
                attempt_row("analyst", Some("ok")),
                text("analyst", TextKind::Output, "the analyst's answer"),
                text("analyst", TextKind::Stderr, "a warning"),
            ])
            .unwrap();
        assert_eq!(rows_in_attempt_texts(&store).await, 0);
        for (kind, expected) in [
            (TextKind::Prompt, prompt.as_str()),
            (TextKind::Output, "the analyst's answer"),
            (TextKind::Stderr, "a warning"),
        ] {
            let read = store.attempt_text(&key("analyst", 1), kind).await.unwrap();
            assert_eq!(read.as_deref(), Some(expected.as_bytes()), "{kind:?}");
        }
        let attempts = store.attempts("r1").await.unwrap();
        assert_eq!(attempts.len(), 1);
        assert_eq!(attempts[0].outcome.as_deref(), Some("ok"));

        // Recording the attempt again on its own replaces its record, not its texts.
        let crate::BatchWrite::Attempt(failed) = attempt_row("analyst", Some("failed")) else {
            unreachable!("attempt_row makes an attempt's row")
        };
        store.record_attempt(&failed).await.unwrap();
        let read = store
            .attempt_text(&key("analyst", 1), TextKind::Prompt)
            .await
            .unwrap();
        assert_eq!(read.as_deref(), Some(prompt.as_bytes()));
        let attempts = store.attempts("r1").await.unwrap();
        assert_eq!(attempts[0].outcome.as_deref(), Some("failed"));
    }

    #[tokio::test]
    async fn a_text_written_alone_goes_into_its_attempts_row_or_waits_beside_it() {
        let directory = tempfile::tempdir().unwrap();
        let store = crate::store::tests::store_with_run(directory.path()).await;
        store.write_batch(&[attempt_row("analyst", None)]).unwrap();
        // The row exists: the text goes into it.
        store
            .write_batch(&[text("analyst", TextKind::Prompt, "a short prompt")])
            .unwrap();
        // No row yet: the text is kept beside, and a later row without it does not hide it.
        store
            .write_batch(&[text("architect", TextKind::Prompt, "another prompt")])
            .unwrap();
        store
            .write_batch(&[attempt_row("architect", Some("ok"))])
            .unwrap();
        assert_eq!(rows_in_attempt_texts(&store).await, 1);
        for (agent, expected) in [
            ("analyst", "a short prompt"),
            ("architect", "another prompt"),
        ] {
            let read = store
                .attempt_text(&key(agent, 1), TextKind::Prompt)
                .await
                .unwrap();
            assert_eq!(read.as_deref(), Some(expected.as_bytes()), "{agent}");
        }
        // A newer text in the row is the one read.
        store
            .write_batch(&[
                attempt_row("architect", Some("ok")),
                text("architect", TextKind::Prompt, "the prompt, again"),
            ])
            .unwrap();
        let read = store
            .attempt_text(&key("architect", 1), TextKind::Prompt)
            .await
            .unwrap();
        assert_eq!(read.as_deref(), Some(&b"the prompt, again"[..]));
    }

    #[test]
    fn a_deflated_text_never_inflates_past_its_recorded_length() {
        let text = vec![b'a'; 10_000];
        let (codec, body) = encode(&text);
        assert!(decode(codec, 100, body).is_err());
    }
}
