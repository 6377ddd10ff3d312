-- The gateway's suppressions API (issue 19) lists each suppression with when it was made, the
-- message that caused it (when known) and its detail: the view's interface grows (new columns at
-- the end, as in 0007_bounces.sql). Searching by domain and the `since` filter read the table.
CREATE OR REPLACE VIEW suppression_reasons AS
    SELECT account_id, address, reason, created_at, message_id, detail FROM suppressions;
