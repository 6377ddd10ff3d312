-- A dedicated pool is ready once one of the account's sending domains is verified: before that
-- the renderer sees no assignment and the account's mail leaves from the shared pool (a new IP
-- never sends mail its SPF and DKIM records do not yet cover).
CREATE OR REPLACE VIEW account_dedicated_pools AS
    SELECT p.account_id, p.pool FROM account_ip_pools p
    WHERE EXISTS (SELECT 1 FROM sending_domains d WHERE d.account_id = p.account_id AND d.verified_at IS NOT NULL);
