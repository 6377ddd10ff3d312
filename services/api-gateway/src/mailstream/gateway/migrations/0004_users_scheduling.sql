-- Owned by the gateway: users of an account (API keys and SMTP tokens name their creator),
-- scheduled sends, and what the gateway itself decides about a send (canceled).
CREATE TABLE users (
    id          bigserial PRIMARY KEY,
    account_id  bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    email       text NOT NULL,             -- lower-cased
    name        text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    removed_at  timestamptz
);
CREATE UNIQUE INDEX users_account_email ON users (account_id, email) WHERE removed_at IS NULL;

ALTER TABLE api_keys ADD COLUMN name text NOT NULL DEFAULT '';
-- The user who created the key; keys survive the removal of their user.
ALTER TABLE api_keys ADD COLUMN created_by bigint REFERENCES users (id) ON DELETE SET NULL;

-- A send accepted with sendAt in the future. The encoded SendRequested waits here until the
-- scheduler publishes it (SELECT ... FOR UPDATE SKIP LOCKED, publish, mark released, one
-- transaction), so two replicas or a restart never release it twice. The payload (which
-- holds customProperties) is erased once released or canceled.
CREATE TABLE scheduled_sends (
    status_id    uuid PRIMARY KEY REFERENCES send_requests (status_id) ON DELETE CASCADE,
    account_id   bigint NOT NULL,
    send_at      timestamptz NOT NULL,
    payload      bytea,
    released_at  timestamptz,
    canceled_at  timestamptz
);
CREATE INDEX scheduled_sends_due ON scheduled_sends (send_at) WHERE released_at IS NULL AND canceled_at IS NULL;

ALTER TABLE send_requests ADD COLUMN send_at timestamptz;
ALTER TABLE send_requests ADD COLUMN canceled_at timestamptz;
CREATE INDEX send_requests_account ON send_requests (account_id, requested_at);

-- Emails: when they were published / archived, and a cursor-friendly listing index exists (emails_account).
ALTER TABLE emails ADD COLUMN published_at timestamptz;
ALTER TABLE emails ADD COLUMN archived_at timestamptz;
ALTER TABLE emails ADD COLUMN cloned_from bigint;
