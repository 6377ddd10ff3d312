-- Owned by the gateway (issue 16): the topic prefixes an account's trigger rules may read, set by
-- the operator (`mailstream accounts trigger-topics`). NULL: the operator's default,
-- MAILSTREAM_TRIGGER_TOPIC_PREFIXES; an empty array: any topic that is not mailstream's own.
ALTER TABLE accounts ADD COLUMN trigger_topic_prefixes text[];
