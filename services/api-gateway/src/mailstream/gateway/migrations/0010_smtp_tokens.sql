-- Owned by the gateway: SMTP API tokens. The id is the SMTP username; the password is shown
-- once (create, password-reset) and only its argon2id hash is kept. Tokens do not expire and
-- do not depend on the user who created them: created_by is a snapshot of that user's email.
CREATE SEQUENCE smtp_token_campaign_ids START 10000001;

CREATE TABLE smtp_tokens (
    id                 text PRIMARY KEY,
    account_id         bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    password_hash      text NOT NULL,            -- argon2id, PHC string
    campaign_name      text NOT NULL,
    email_campaign_id  bigint NOT NULL UNIQUE DEFAULT nextval('smtp_token_campaign_ids'),
    create_contact     boolean NOT NULL,
    created_by         text NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    password_reset_at  timestamptz
);
-- Listing: per account in creation order (email_campaign_id grows with it), cursor = last campaign id.
CREATE INDEX smtp_tokens_account ON smtp_tokens (account_id, email_campaign_id);
CREATE INDEX smtp_tokens_campaign_name ON smtp_tokens (account_id, campaign_name);
