-- Sending domains are verified by DNS (issue 15): each record's last check, the domain's state,
-- and since when a verified domain's records fail (FAILING keeps signing until the grace ends).
ALTER TABLE sending_domains
    ADD COLUMN state           text NOT NULL DEFAULT 'PENDING' CHECK (state IN ('PENDING', 'VERIFIED', 'FAILING')),
    ADD COLUMN failing_since   timestamptz,
    ADD COLUMN last_checked_at timestamptz,
    -- {"SPF": {"status": "VERIFIED", "reason": "..."}, "DKIM": ..., "RETURN_PATH": ..., "DMARC": ...}
    ADD COLUMN record_checks   jsonb NOT NULL DEFAULT '{}';
UPDATE sending_domains SET state = 'VERIFIED' WHERE verified_at IS NOT NULL;
-- the re-verification pass looks for verified domains checked longest ago
CREATE INDEX sending_domains_recheck ON sending_domains ((coalesce(last_checked_at, verified_at)))
    WHERE verified_at IS NOT NULL;

-- An account's dedicated transactional pool: a pool name of the sending policy's pools.toml.
CREATE TABLE account_ip_pools (
    account_id  bigint PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
    pool        text NOT NULL,
    assigned_at timestamptz NOT NULL DEFAULT now()
);

-- The renderer: which pool an account's mail leaves from (no row: the shared pool).
CREATE VIEW account_dedicated_pools AS
    SELECT account_id, pool FROM account_ip_pools;
