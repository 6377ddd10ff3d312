-- Owned by the tracker: each rendered message's account, recipients, email and SMTP token, from
-- email.rendered, so that a feedback-loop report (ARF, SES complaint) naming our message id
-- (X-Mailstream-ID or Message-ID) is attributed to the right account and contact.
CREATE TABLE tracked_messages (
    message_id     uuid PRIMARY KEY,
    account_id     bigint NOT NULL,
    recipients     text[] NOT NULL,
    email_id       bigint,
    smtp_token_id  text,
    rendered_at    timestamptz NOT NULL
);
