-- Schema version 2: gate decisions as transitions, publishing as a recorded effect, and the
-- answers a run finished (so that resume never calls a finished agent again).

-- The round of staged artifacts a pending gate shows: 1 as the stage staged them, one more for
-- each modification. A decision names the round it saw.
ALTER TABLE gates ADD COLUMN round INTEGER NOT NULL DEFAULT 1;

-- An approval's effect, recorded in the decision's own transaction: publish these staged
-- artifacts (by content hash) into the feature directory, then record the approvals of the
-- artifacts and of the stage's inputs (as they were when the gate was approved). `done` once
-- the files are in place and the approvals recorded; a pending row is finished by the next
-- stagegate command.
CREATE TABLE publications (
    run_id          TEXT    NOT NULL REFERENCES runs (id),
    stage           TEXT    NOT NULL,
    decision_id     INTEGER NOT NULL REFERENCES decisions (id),
    feature_dir     TEXT    NOT NULL,
    artifacts_json  TEXT    NOT NULL,
    inputs_json     TEXT    NOT NULL,
    state           TEXT    NOT NULL,
    decided_at_ms   INTEGER NOT NULL,
    done_at_ms      INTEGER,
    PRIMARY KEY (run_id, stage)
) STRICT;

CREATE INDEX publications_by_state ON publications (state);

-- Every answer a run obtained (called, or taken from the cache), by call key: what `resume`
-- replays, whatever the cache holds or has forgotten. Not part of the cache: `cache clear` and
-- time to live do not touch it.
CREATE TABLE answers (
    run_id          TEXT    NOT NULL REFERENCES runs (id),
    key             TEXT    NOT NULL,
    output          TEXT    NOT NULL,
    PRIMARY KEY (run_id, key)
) STRICT;

-- At most one final decision (approve or reject) per gate, whatever the code above does.
-- A trigger rather than a unique index: a database written by the first schema may already
-- hold two, and must still open.
CREATE TRIGGER one_final_decision_per_gate BEFORE INSERT ON decisions
WHEN NEW.kind IN ('approve', 'reject') AND EXISTS (
    SELECT 1 FROM decisions
    WHERE run_id = NEW.run_id AND stage = NEW.stage AND kind IN ('approve', 'reject')
)
BEGIN SELECT RAISE (ABORT, 'the gate is already decided'); END;
