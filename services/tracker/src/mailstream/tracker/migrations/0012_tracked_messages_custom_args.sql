-- The custom_args of a rendered message (SendGrid's /v3/mail/send), carried onto the spam reports
-- and late bounces attributed to it. NULL: none (most messages; nothing stored for them).
ALTER TABLE tracked_messages ADD COLUMN custom_args jsonb;
