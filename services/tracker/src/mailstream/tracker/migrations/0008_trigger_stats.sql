-- Owned by the tracker (issue 16): the automation trigger rule that made a send, from
-- email.rendered.meta, so that its delivery and engagement events (which do not carry it) are
-- counted per rule too: a `trigger` dimension of the statistics (dimension_id = the rule id).
ALTER TABLE tracked_messages ADD COLUMN trigger_id text;

ALTER TABLE stats DROP CONSTRAINT stats_dimension_check;
ALTER TABLE stats ADD CONSTRAINT stats_dimension_check
    CHECK (dimension IN ('account', 'email', 'token', 'trigger'));
