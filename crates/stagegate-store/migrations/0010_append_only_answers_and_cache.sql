-- stagegate's state, schema version 10: answers and cache entries are appended, not keyed.
--
-- Both tables were keyed by the call's key, a blake3 hash: each answer and each cache entry
-- went into a b-tree at a random place, and a wide stage's commits rewrote most of those trees'
-- pages every time (a 10,000-agent stage logged 58 MB of pages for a 38 MB database; 47 MB
-- since). Neither is ever looked up by key in SQLite: a run reads its answers, and the valid
-- cache entries, all at once when it starts. So rows are now appended in rowid order, found
-- through indexes that grow at their end (by run, by expiry), and the readers keep what the
-- keys used to enforce: of a run's answers for one key the first, of the cache entries for one
-- key the newest. A superseded cache entry stays until it expires and the next run's prune
-- deletes it.
CREATE TABLE answers_v10 (
    run_id          TEXT    NOT NULL REFERENCES runs (id),
    key             TEXT    NOT NULL,
    output          TEXT    NOT NULL
) STRICT;

INSERT INTO answers_v10 (run_id, key, output)
SELECT run_id, key, output FROM answers ORDER BY rowid;

DROP TABLE answers;

ALTER TABLE answers_v10 RENAME TO answers;

CREATE INDEX answers_by_run ON answers (run_id);

CREATE TABLE cache_v10 (
    key             TEXT    NOT NULL,
    phase           TEXT    NOT NULL,
    output          TEXT    NOT NULL,
    output_hash     TEXT    NOT NULL,
    run_id          TEXT    NOT NULL,
    created_at_ms   INTEGER NOT NULL,
    expires_at_ms   INTEGER NOT NULL
) STRICT;

INSERT INTO cache_v10 (key, phase, output, output_hash, run_id, created_at_ms, expires_at_ms)
SELECT key, phase, output, output_hash, run_id, created_at_ms, expires_at_ms
FROM cache ORDER BY created_at_ms, rowid;

DROP TABLE cache;

ALTER TABLE cache_v10 RENAME TO cache;

CREATE INDEX cache_by_expiry ON cache (expires_at_ms);

CREATE INDEX cache_by_run ON cache (run_id);
