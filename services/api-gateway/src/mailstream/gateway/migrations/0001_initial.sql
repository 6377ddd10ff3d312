-- Owned by the gateway: accounts, API keys, emails (templates) and accepted send requests.
CREATE TABLE accounts (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
    id          bigserial PRIMARY KEY,
    account_id  bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    key_hash    bytea NOT NULL UNIQUE,   -- SHA-256 of a 256-bit random key; the key itself is shown once
    key_prefix  text NOT NULL,           -- first characters, to tell keys apart in listings
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);

CREATE TABLE emails (
    id                bigserial PRIMARY KEY,
    account_id        bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name              text NOT NULL,
    state             text NOT NULL DEFAULT 'DRAFT' CHECK (state IN ('DRAFT', 'PUBLISHED', 'ARCHIVED')),
    single_send_api   boolean NOT NULL DEFAULT false,
    current_version   int NOT NULL DEFAULT 1,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX emails_account ON emails (account_id, id);

-- Every saved content of an email, immutable: a send names the version it was accepted with,
-- so an edit never changes what an accepted send renders, and renderers can cache by version.
CREATE TABLE email_versions (
    email_id           bigint NOT NULL REFERENCES emails (id) ON DELETE CASCADE,
    version            int NOT NULL,
    subject            text NOT NULL,
    from_name          text NOT NULL DEFAULT '',
    from_email         text NOT NULL,
    reply_to           text[] NOT NULL DEFAULT '{}',
    html               text NOT NULL DEFAULT '',
    text_body          text,
    subscription_type  text NOT NULL CHECK (subscription_type IN ('TRANSACTIONAL', 'MARKETING')),
    tracking           boolean NOT NULL DEFAULT true,
    created_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (email_id, version)
);

CREATE TABLE send_requests (
    status_id     uuid PRIMARY KEY,
    message_id    uuid NOT NULL UNIQUE,
    account_id    bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    send_id       text,
    email_id      bigint,
    recipient     text NOT NULL,
    requested_at  timestamptz NOT NULL,
    -- set when the gateway itself ends the send (unknown email, bad recipient, ...)
    send_result   text,
    completed_at  timestamptz
);
CREATE UNIQUE INDEX send_requests_send_id ON send_requests (account_id, send_id) WHERE send_id IS NOT NULL;
