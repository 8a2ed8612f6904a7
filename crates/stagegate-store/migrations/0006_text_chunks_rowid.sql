-- stagegate's state, schema version 6: text chunks in a rowid table.
--
-- In version 5 `text_chunks` was a WITHOUT ROWID table keyed by the chunk's hash. Such a table
-- keeps its rows in an index b-tree, where a row may hold only about a quarter of a 4 KiB page:
-- the rest of a typical compressed chunk (1–2 KiB) spilled to an overflow page of its own, mostly
-- empty, and rows keyed by random hashes were inserted all over the tree. A 10,000-agent stage
-- wrote 47 MB of pages for 13 MB of chunks, and most of its recording time went to reading and
-- writing them. Here rows are appended in rowid order, a chunk of up to about 4 KiB fits in its
-- page, and only the small (hash → rowid) index is keyed by hash.
CREATE TABLE text_chunks_v6 (
    id INTEGER PRIMARY KEY,
    hash BLOB NOT NULL UNIQUE,
    codec TEXT NOT NULL CHECK (codec IN ('raw', 'deflate')),
    length INTEGER NOT NULL,
    body BLOB NOT NULL
);

INSERT INTO text_chunks_v6 (hash, codec, length, body)
SELECT hash, codec, length, body FROM text_chunks;

DROP TABLE text_chunks;

ALTER TABLE text_chunks_v6 RENAME TO text_chunks;
