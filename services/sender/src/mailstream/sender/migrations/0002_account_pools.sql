-- Owned by the sender (the sending policy's owner): an account's dedicated IP pool, by name
-- of a pool in the policy's pools.toml. The renderer reads it to pick TRANSACTIONAL mail's IP.
CREATE TABLE account_pools (
    account_id   bigint PRIMARY KEY,
    pool         text NOT NULL,
    assigned_at  timestamptz NOT NULL DEFAULT now()
);
