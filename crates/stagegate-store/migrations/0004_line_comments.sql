-- Schema version 4: a person's comments on lines of the staged artifacts, recorded with the
-- decision that sent them (a modification, in the decision's own transaction). Append only, as
-- the decisions they belong to.
CREATE TABLE line_comments (
    decision_id     INTEGER NOT NULL REFERENCES decisions (id),
    position        INTEGER NOT NULL,
    run_id          TEXT    NOT NULL REFERENCES runs (id),
    stage           TEXT    NOT NULL,
    -- The round of staged artifacts the comment was written on.
    round           INTEGER NOT NULL,
    artifact        TEXT    NOT NULL,
    first_line      INTEGER NOT NULL,
    last_line       INTEGER NOT NULL,
    -- The lines as the person saw them, so the comment keeps its meaning after a rework.
    quoted          TEXT    NOT NULL,
    comment         TEXT    NOT NULL,
    PRIMARY KEY (decision_id, position)
) STRICT;

CREATE INDEX line_comments_by_run ON line_comments (run_id, stage);

CREATE TRIGGER line_comments_append_only_update BEFORE UPDATE ON line_comments
BEGIN SELECT RAISE (ABORT, 'line comments are append-only'); END;
CREATE TRIGGER line_comments_append_only_delete BEFORE DELETE ON line_comments
BEGIN SELECT RAISE (ABORT, 'line comments are append-only'); END;
