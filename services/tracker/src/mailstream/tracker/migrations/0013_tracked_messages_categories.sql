-- The categories of a rendered message (SendGrid's /v3/mail/send), carried like its custom_args onto
-- the spam reports and late bounces attributed to it, and onto its annotated links' opens and clicks.
-- NULL: none (most messages; nothing stored for them).
ALTER TABLE tracked_messages ADD COLUMN categories text[];
