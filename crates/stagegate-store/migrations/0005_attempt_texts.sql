-- stagegate's state, schema version 5: an attempt's texts live in the database, not in files.
--
-- Before, every attempt wrote `prompt.md`, `output.md` and `stderr.txt` into its own directory
-- of the run directory: a directory and up to three files per attempt, which was most of what
-- recording a wide stage cost, and every agent's prompt repeated the same inputs (the spec, the
-- constitution…) in full.
--
-- Now a text is cut into content-defined chunks (boundaries chosen by the bytes themselves, so
-- two prompts that share a long passage share the chunks that hold it, whatever precedes it),
-- and each distinct chunk is one row of `text_chunks`, keyed by its blake3 hash: the inputs that
-- the agents of a stage share, and the answers a retry repeats, are stored once.
-- `attempt_texts` says which chunks, in order, make an attempt's prompt, output or stderr.
--
-- `codec` is 'raw' (the bytes as they are) or 'deflate' (raw DEFLATE, level 1): short chunks and
-- chunks that do not shrink are kept raw. `length` is the uncompressed size; `chunks` is the
-- 32-byte hashes of the text's chunks, concatenated.
CREATE TABLE text_chunks (
    hash BLOB PRIMARY KEY,
    codec TEXT NOT NULL CHECK (codec IN ('raw', 'deflate')),
    length INTEGER NOT NULL,
    body BLOB NOT NULL
) WITHOUT ROWID;

CREATE TABLE attempt_texts (
    run_id TEXT NOT NULL,
    stage TEXT NOT NULL,
    phase TEXT NOT NULL,
    agent TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('prompt', 'output', 'stderr')),
    length INTEGER NOT NULL,
    chunks BLOB NOT NULL,
    PRIMARY KEY (run_id, stage, phase, agent, attempt, kind)
) WITHOUT ROWID;
