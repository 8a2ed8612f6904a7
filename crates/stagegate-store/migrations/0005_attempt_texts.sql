-- stagegate's state, schema version 5: an attempt's texts live in the database, not in files.
--
-- Before, every attempt wrote `prompt.md`, `output.md` and `stderr.txt` into its own directory
-- of the run directory: a directory and up to three files per attempt, which was most of what
-- recording a wide stage cost. Now a text is one row of `texts`, keyed by its content hash, so
-- the prompts that the agents of a stage share and the answers a retry repeats are stored once;
-- `attempt_texts` says which text is which attempt's prompt, output or stderr. `stagegate show`
-- reads them back.
--
-- `codec` is 'raw' (the bytes as they are) or 'deflate' (raw DEFLATE, level 1): short texts
-- and texts that do not shrink are kept raw. `length` is the uncompressed size.
CREATE TABLE texts (
    hash TEXT PRIMARY KEY,
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
    hash TEXT NOT NULL REFERENCES texts (hash),
    PRIMARY KEY (run_id, stage, phase, agent, attempt, kind)
) WITHOUT ROWID;
