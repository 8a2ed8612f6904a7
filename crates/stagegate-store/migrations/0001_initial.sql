-- stagegate's state, schema version 1.
-- Timestamps are milliseconds since the Unix epoch; JSON columns hold serde_json text;
-- enumerations are stored by their snake_case names so the file reads well in the sqlite3 shell.

CREATE TABLE runs (
    id             TEXT    NOT NULL PRIMARY KEY,
    feature_dir    TEXT    NOT NULL,
    stages_json    TEXT    NOT NULL,
    state          TEXT    NOT NULL,
    current_stage  TEXT,
    settings_json  TEXT    NOT NULL,
    created_at_ms  INTEGER NOT NULL,
    updated_at_ms  INTEGER NOT NULL
) STRICT;

CREATE INDEX runs_by_creation ON runs (created_at_ms);

-- AUTOINCREMENT so that a sequence number is never reused, even after rows are deleted.
CREATE TABLE events (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id          TEXT    NOT NULL REFERENCES runs (id),
    kind            TEXT    NOT NULL,
    payload_json    TEXT    NOT NULL,
    recorded_at_ms  INTEGER NOT NULL
) STRICT;

CREATE INDEX events_by_run ON events (run_id, seq);

CREATE TABLE attempts (
    run_id          TEXT    NOT NULL REFERENCES runs (id),
    stage           TEXT    NOT NULL,
    phase           TEXT    NOT NULL,
    agent           TEXT    NOT NULL,
    attempt         INTEGER NOT NULL,
    backend         TEXT    NOT NULL,
    started_at_ms   INTEGER NOT NULL,
    finished_at_ms  INTEGER,
    outcome         TEXT,
    failure_reason  TEXT,
    output_hash     TEXT,
    output_bytes    INTEGER,
    confidence      REAL,
    input_tokens    INTEGER,
    output_tokens   INTEGER,
    PRIMARY KEY (run_id, stage, phase, agent, attempt)
) STRICT;

CREATE TABLE gates (
    run_id          TEXT    NOT NULL REFERENCES runs (id),
    stage           TEXT    NOT NULL,
    question        TEXT    NOT NULL,
    artifacts_json  TEXT    NOT NULL,
    state           TEXT    NOT NULL,
    opened_at_ms    INTEGER NOT NULL,
    closed_at_ms    INTEGER,
    PRIMARY KEY (run_id, stage)
) STRICT;

CREATE INDEX gates_by_state ON gates (state);

CREATE TABLE decisions (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id          TEXT    NOT NULL REFERENCES runs (id),
    stage           TEXT    NOT NULL,
    kind            TEXT    NOT NULL,
    reason          TEXT,
    note            TEXT,
    diff            TEXT,
    decided_by      TEXT    NOT NULL,
    decided_at_ms   INTEGER NOT NULL
) STRICT;

CREATE INDEX decisions_by_run ON decisions (run_id, id);

-- run_id is NULL for approvals given outside a run (`stagegate approve spec`).
CREATE TABLE approvals (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    feature_dir     TEXT    NOT NULL,
    subject         TEXT    NOT NULL,
    path            TEXT    NOT NULL,
    content_hash    TEXT    NOT NULL,
    run_id          TEXT    REFERENCES runs (id),
    stage           TEXT,
    approved_at_ms  INTEGER NOT NULL
) STRICT;

CREATE INDEX approvals_by_subject ON approvals (feature_dir, subject, id);

-- Decisions and approvals are an audit trail: the database itself refuses to rewrite history.
CREATE TRIGGER decisions_are_append_only_update BEFORE UPDATE ON decisions
BEGIN SELECT RAISE (ABORT, 'decisions are append-only'); END;
CREATE TRIGGER decisions_are_append_only_delete BEFORE DELETE ON decisions
BEGIN SELECT RAISE (ABORT, 'decisions are append-only'); END;
CREATE TRIGGER approvals_are_append_only_update BEFORE UPDATE ON approvals
BEGIN SELECT RAISE (ABORT, 'approvals are append-only'); END;
CREATE TRIGGER approvals_are_append_only_delete BEFORE DELETE ON approvals
BEGIN SELECT RAISE (ABORT, 'approvals are append-only'); END;

-- Content-addressed outputs of agent calls. No foreign key to runs: an entry outlives the run that
-- recorded it (another run reuses it) and `clear_cache` must not depend on the runs table.
CREATE TABLE cache (
    key             TEXT    NOT NULL PRIMARY KEY,
    phase           TEXT    NOT NULL,
    output          TEXT    NOT NULL,
    output_hash     TEXT    NOT NULL,
    run_id          TEXT    NOT NULL,
    created_at_ms   INTEGER NOT NULL,
    expires_at_ms   INTEGER NOT NULL
) STRICT;

CREATE INDEX cache_by_expiry ON cache (expires_at_ms);
CREATE INDEX cache_by_run ON cache (run_id);

-- One active run per feature directory and stage. A row whose process is gone is a stale lock,
-- taken over by the next run (which marks the holder interrupted).
CREATE TABLE locks (
    feature_dir     TEXT    NOT NULL,
    stage           TEXT    NOT NULL,
    run_id          TEXT    NOT NULL,
    pid             INTEGER NOT NULL,
    acquired_at_ms  INTEGER NOT NULL,
    PRIMARY KEY (feature_dir, stage)
) STRICT;
