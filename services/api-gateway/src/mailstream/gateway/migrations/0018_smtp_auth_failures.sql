-- Owned by the gateway: failed SMTP AUTH attempts per client address, shared by every gateway
-- replica so that the throttle's limit holds whichever replica a client reaches. UNLOGGED: a
-- crash of PostgreSQL forgets them (the throttle starts afresh), and writes skip the WAL.
CREATE UNLOGGED TABLE smtp_auth_failures (
    id         bigserial PRIMARY KEY,
    client     text NOT NULL,
    failed_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX smtp_auth_failures_client ON smtp_auth_failures (client, failed_at);
CREATE INDEX smtp_auth_failures_age ON smtp_auth_failures (failed_at);
