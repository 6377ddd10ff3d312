-- The dedicated-pool assignment moved to the gateway, which owns the account settings (the
-- renderer reads the gateway's view now); the sender no longer keeps a copy.
DROP VIEW IF EXISTS account_pool_assignments;
DROP TABLE IF EXISTS account_pools;

-- Owned by the sender: each warming IP's position on its warm-up curve, shared by every sender
-- process so that a restart continues the curve and two processes draw on one cap.
CREATE TABLE warmup_positions (
    address       text PRIMARY KEY,         -- the source address exactly as pools.toml spells it
    first_used_on date NOT NULL,            -- UTC day of its first send; pools.toml's warmup_started wins
    window_start  timestamptz NOT NULL,     -- start of the current warm-up period (hour or UTC day)
    window_sent   integer NOT NULL CHECK (window_sent >= 0),  -- sends granted in that period
    last_granted  integer NOT NULL DEFAULT 0,  -- what the latest reservation granted (RETURNING sees only new values)
    updated_at    timestamptz NOT NULL DEFAULT now()
);
