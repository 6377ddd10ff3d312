-- Owned by the tracker: statistics materialized from its Faust tables, per account, per email
-- and per SMTP token. The gateway serves them (GET /mailstream/v1/stats, token details).
-- Rates are computed on read: open rate = opens_unique_human / delivered,
-- click rate = clicks_unique_human / delivered.
CREATE TABLE stats (
    account_id            bigint NOT NULL,
    dimension             text NOT NULL CHECK (dimension IN ('account', 'email', 'token')),
    dimension_id          text NOT NULL,     -- account id, email id or SMTP token id, as text
    sent                  bigint NOT NULL DEFAULT 0,
    delivered             bigint NOT NULL DEFAULT 0,
    bounced               bigint NOT NULL DEFAULT 0,
    dropped               bigint NOT NULL DEFAULT 0,
    opens_total           bigint NOT NULL DEFAULT 0,
    opens_unique_human    bigint NOT NULL DEFAULT 0,
    opens_machine         bigint NOT NULL DEFAULT 0,
    clicks_total          bigint NOT NULL DEFAULT 0,
    clicks_unique_human   bigint NOT NULL DEFAULT 0,
    clicks_machine        bigint NOT NULL DEFAULT 0,
    spam_reports          bigint NOT NULL DEFAULT 0,
    unsubscribes          bigint NOT NULL DEFAULT 0,
    updated_at            timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, dimension, dimension_id)
);
