-- Late bounces (DSNs mailed to a message's VERP return path, docs/events.md): the class a bounced
-- send ended with, synchronous or late, and the lookup of a message's send status by message id
-- (a DSN names the message, its delivery event needs the status id).
ALTER TABLE send_outcomes ADD COLUMN bounce_class text;  -- 'hard:InvalidRecipient', 'soft:QuotaIssues' ...
CREATE INDEX send_outcomes_message_id ON send_outcomes (message_id);

-- The gateway's status endpoint may show the class (a new column at the end: the view's interface grows).
CREATE OR REPLACE VIEW send_outcome_statuses AS
    SELECT status_id, account_id, status, send_result, started_at, completed_at, event_id, event_created,
           bounce_class
    FROM send_outcomes;
