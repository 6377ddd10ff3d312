-- What other services read of the sender's tables (the renderer picks a TRANSACTIONAL message's
-- IP from the account's dedicated pool).
CREATE VIEW account_pool_assignments AS
    SELECT account_id, pool FROM account_pools;
