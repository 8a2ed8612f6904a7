-- stagegate's state, schema version 7: what an attempt cost, as the agent reported it.
--
-- Some CLI agents say what each call cost (Claude Code's `total_cost_usd`, opencode's
-- `step_finish` costs), with their own prices and cache discounts; `[prices]` in
-- `stagegate.toml` only estimates it from the tokens. NULL when the agent did not say.
ALTER TABLE attempts ADD COLUMN cost_usd REAL;
