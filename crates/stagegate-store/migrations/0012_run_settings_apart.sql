-- stagegate's state, schema version 12: a run's settings live apart from its row.
--
-- SQLite rewrites a whole row when any of its columns changes, and a run's row changes with
-- every state it goes through (running, waiting at a gate, decided…). Its resolved settings,
-- kept for the report, were part of it: 1.5 MB of JSON for a 10,000-agent stage, copied into
-- the write-ahead log at each change (3 to 6 ms each). They are written once, here.
CREATE TABLE run_settings (
    run_id          TEXT    NOT NULL PRIMARY KEY REFERENCES runs (id),
    settings_json   TEXT    NOT NULL
) STRICT;

INSERT INTO run_settings (run_id, settings_json) SELECT id, settings_json FROM runs;

ALTER TABLE runs DROP COLUMN settings_json;
