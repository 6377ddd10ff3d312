-- Owned by the tracker (issue 19): a suppression an account adds by hand through the API, for an
-- address it must not mail at all (the renderer and the gateway answer BLOCKED_ADDRESS, for
-- transactional mail too, as for a bounce).
ALTER TABLE suppressions DROP CONSTRAINT suppressions_reason_check;
ALTER TABLE suppressions ADD CONSTRAINT suppressions_reason_check
    CHECK (reason IN ('BOUNCED', 'SPAM_REPORT', 'UNSUBSCRIBED', 'MANUAL'));
