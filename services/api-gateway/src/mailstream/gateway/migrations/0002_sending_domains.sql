-- Owned by the gateway: an account's sending domains and their DKIM keys (generated here,
-- private key never leaves the database except to the sender, which signs with it).
CREATE TABLE sending_domains (
    account_id       bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    domain           text NOT NULL,          -- lower-cased
    dkim_selector    text NOT NULL,
    dkim_private_key text NOT NULL,          -- PEM, RSA 2048
    dkim_public_key  text NOT NULL,          -- base64 DER, as published in the TXT record
    verified_at      timestamptz,            -- set once the DNS checks pass
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, domain)
);
CREATE INDEX sending_domains_domain ON sending_domains (domain);
