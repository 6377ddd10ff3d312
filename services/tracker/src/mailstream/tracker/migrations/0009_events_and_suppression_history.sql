-- Owned by the tracker: every email event of an account (HubSpot's email events, legacy v1 API),
-- written with the batch of records it comes from. id is the event's own (a SENT event's id is
-- the send status's eventId); type is HubSpot's: PROCESSED, SENT, DELIVERED, DEFERRED, BOUNCE,
-- DROPPED, OPEN, CLICK, SPAMREPORT, STATUSCHANGE, UNBOUNCE.
CREATE TABLE email_events (
    id             uuid PRIMARY KEY,
    account_id     bigint NOT NULL,
    type           text NOT NULL,
    created        timestamptz NOT NULL,
    recipient      text,                     -- lower-cased
    message_id     uuid,
    email_id       bigint,
    smtp_token_id  text,
    detail         jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX email_events_by_time ON email_events (account_id, created, id);
CREATE INDEX email_events_by_recipient ON email_events (account_id, recipient, created, id);

-- Owned by the tracker: each change made to an account's suppression list on request (from
-- email.suppression.changes: the gateway's unbounce, ...), with who asked and why.
CREATE TABLE suppression_history (
    event_id      uuid PRIMARY KEY,
    account_id    bigint NOT NULL,
    address       text NOT NULL,             -- lower-cased
    action        text NOT NULL CHECK (action IN ('ADD', 'REMOVE')),
    reason        text,                      -- the suppression lifted or added (NULL: every one)
    changed       text[] NOT NULL DEFAULT '{}',  -- the reasons lifted (REMOVE) or added (ADD); empty: none
    note          text,
    requested_by  text,
    requested_at  timestamptz NOT NULL,
    applied_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX suppression_history_by_address ON suppression_history (account_id, address, requested_at);

-- What the gateway reads of them (the interface, as in 0005_views.sql).
CREATE VIEW email_event_log AS
    SELECT id, account_id, type, created, recipient, message_id, email_id, smtp_token_id, detail FROM email_events;

CREATE VIEW suppression_change_log AS
    SELECT event_id, account_id, address, action, reason, changed, note, requested_by, requested_at, applied_at
    FROM suppression_history;
