-- stagegate's state, schema version 3: a lock names its holder by more than a pid.
--
-- A pid alone cannot tell a live holder from a new process that was given the same number (pids
-- are reused, and every container's first process is pid 1), so a lock also records the boot it
-- was taken in (`/proc/sys/kernel/random/boot_id`) and when its process started (field 22 of
-- `/proc/<pid>/stat`, clock ticks since boot). A process with the same pid, in the same boot,
-- that started at the same tick is the same process.
--
-- NULL in rows written by schema version 1 (and where /proc cannot be read): such a holder is
-- judged by its pid alone.
ALTER TABLE locks ADD COLUMN boot_id TEXT;
ALTER TABLE locks ADD COLUMN start_ticks INTEGER;
