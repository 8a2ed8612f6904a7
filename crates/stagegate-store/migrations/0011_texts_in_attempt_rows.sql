-- stagegate's state, schema version 11: an attempt's texts in its own row.
--
-- Each attempt's prompt and output (and stderr, when there is any) were rows of their own in
-- `attempt_texts`, keyed by the attempt and the kind of text: two or three more b-tree inserts
-- per attempt, in a tree the attempts' keys fill in no useful order, for what is a list of chunk
-- hashes or a short text. They are now columns of the attempt's row, written in the same
-- statement as the attempt's start or outcome: `<kind>_length` is NULL when the attempt has no
-- such text there, and then `<kind>_chunks` (the chunks' hashes, concatenated) or `<kind>_body`
-- (a text under 512 bytes, kept whole) hold it. Texts written before, and a text written when
-- its attempt has no row yet, stay in `attempt_texts`, which readers look at second.
ALTER TABLE attempts ADD COLUMN prompt_length INTEGER;
ALTER TABLE attempts ADD COLUMN prompt_chunks BLOB;
ALTER TABLE attempts ADD COLUMN prompt_body BLOB;
ALTER TABLE attempts ADD COLUMN output_length INTEGER;
ALTER TABLE attempts ADD COLUMN output_chunks BLOB;
ALTER TABLE attempts ADD COLUMN output_body BLOB;
ALTER TABLE attempts ADD COLUMN stderr_length INTEGER;
ALTER TABLE attempts ADD COLUMN stderr_chunks BLOB;
ALTER TABLE attempts ADD COLUMN stderr_body BLOB;
