-- Owned by the gateway: one-off sends of an email to many contacts (issue 23).
-- A one-off send names its audience (a list of addresses, all contacts, or contacts whose
-- properties match filters) and the email version it was created with. The fan-out
-- (mailstream.gateway.fanout) expands it a batch at a time: each batch's recipient rows (in
-- send_requests, with one_off_send_id), its records on email.send.requested and the cursor
-- below are written in one transaction holding this row's lock, so a crash repeats at most the
-- batch in hand (same ids, deduplicated) and a cancel falls between two batches.
CREATE TABLE one_off_sends (
    id                 uuid PRIMARY KEY,
    account_id         bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    idempotency_key    text,
    email_id           bigint NOT NULL,
    email_version      int NOT NULL,
    audience           jsonb NOT NULL,          -- {"type": "ADDRESSES" | "ALL_CONTACTS" | "FILTER", "filters": [...]}
    custom_properties  jsonb NOT NULL DEFAULT '{}',
    state              text NOT NULL CHECK (state IN ('SCHEDULED', 'QUEUED', 'SENDING', 'DONE', 'CANCELED')),
    send_at            timestamptz,
    created_at         timestamptz NOT NULL DEFAULT now(),
    started_at         timestamptz,             -- the fan-out's first batch; contacts created later are not targeted
    completed_at       timestamptz,
    canceled_at        timestamptz,
    targeted           int,                     -- the audience's size when the fan-out started
    processed          int NOT NULL DEFAULT 0,  -- recipients fanned out so far (accepted or skipped)
    cursor_address     text,                    -- the last recipient fanned out (keyset order: address)
    last_batch_at      timestamptz              -- the fan-out takes the active send it served least recently
);
CREATE UNIQUE INDEX one_off_sends_idempotency ON one_off_sends (account_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX one_off_sends_account ON one_off_sends (account_id, created_at);
CREATE INDEX one_off_sends_due ON one_off_sends (last_batch_at NULLS FIRST) WHERE state IN ('SCHEDULED', 'QUEUED', 'SENDING');

-- The audience of a one-off send to a list of addresses (lower-cased, each once).
CREATE TABLE one_off_send_addresses (
    one_off_send_id  uuid NOT NULL REFERENCES one_off_sends (id) ON DELETE CASCADE,
    address          text NOT NULL,
    PRIMARY KEY (one_off_send_id, address)
);

-- Each recipient of a one-off send has its own accepted request (and status) here.
ALTER TABLE send_requests ADD COLUMN one_off_send_id uuid;
CREATE INDEX send_requests_one_off ON send_requests (one_off_send_id) WHERE one_off_send_id IS NOT NULL;
