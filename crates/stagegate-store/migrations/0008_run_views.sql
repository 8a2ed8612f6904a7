-- stagegate's state, schema version 8: a snapshot of each run's folded view.
--
-- `stagegate status` shows where every run stands, a fold over each run's whole log; with
-- many runs, or one wide stage (two events per agent), reading and parsing every event made it
-- slow. The process that ran a run writes what the fold gave when it ends, with the sequence
-- number of the last event it covers; a reader folds only the events after `through_seq`
-- (decisions taken by other processes). `format` is the version of the view's serialisation:
-- a reader ignores a snapshot of another format and folds the whole log. `view_json` holds
-- the fold of the events alone; who decided comes from `decisions` when it is read.
CREATE TABLE run_views (
    run_id          TEXT    PRIMARY KEY REFERENCES runs (id),
    through_seq     INTEGER NOT NULL,
    format          INTEGER NOT NULL,
    view_json       TEXT    NOT NULL
) STRICT;
