-- Owned by the tracker: addresses an account must not send MARKETING mail to (and, for
-- PREVIOUSLY_BOUNCED / PREVIOUS_SPAM answers, that the gateway reports). Written from
-- email.delivery (hard bounces) and email.unsubscribe (links, List-Unsubscribe, spam reports).
-- The gateway and the renderer read it; nobody else writes it.
CREATE TABLE suppressions (
    account_id   bigint NOT NULL,
    address      text NOT NULL,            -- lower-cased
    reason       text NOT NULL CHECK (reason IN ('BOUNCED', 'SPAM_REPORT', 'UNSUBSCRIBED')),
    message_id   uuid,                     -- the message that caused it, when known
    detail       text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, address, reason)
);
