-- stagegate's state, schema version 9: short texts kept in their attempt's row.
--
-- A text shorter than 512 bytes (a short answer, a line of stderr, a small prompt) is a single
-- chunk anyway, which a chunk row and an entry in the hash index then stored beside the row
-- that lists it: two more b-tree inserts per text, keyed by a random hash, for a chunk almost
-- never shared. Such a text is now `body` of its `attempt_texts` row, with no chunk (`chunks`
-- is empty); longer texts are chunked as before, with `body` NULL. Rows written before keep
-- `body` NULL and are read as they were.
ALTER TABLE attempt_texts ADD COLUMN body BLOB;
