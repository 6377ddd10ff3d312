-- Owned by the gateway: contacts per account, with the statuses set through the contacts API
-- or by sends (contactProperties). The renderer reads it (MARKETING rules); event-driven
-- suppressions (bounces, spam reports, unsubscribe clicks) are the tracker's `suppressions`.
CREATE TABLE contacts (
    account_id           bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    email                text NOT NULL,                 -- lower-cased
    properties           jsonb NOT NULL DEFAULT '{}',
    subscription_status  text NOT NULL DEFAULT 'NOT_SPECIFIED'
                         CHECK (subscription_status IN ('SUBSCRIBED', 'UNSUBSCRIBED', 'NOT_SPECIFIED')),
    quarantined          boolean NOT NULL DEFAULT false,
    double_opt_in        text NOT NULL DEFAULT 'NOT_REQUIRED'
                         CHECK (double_opt_in IN ('CONFIRMED', 'PENDING', 'NOT_REQUIRED')),
    bounced              boolean NOT NULL DEFAULT false,
    spam_reported        boolean NOT NULL DEFAULT false,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, email)
);
