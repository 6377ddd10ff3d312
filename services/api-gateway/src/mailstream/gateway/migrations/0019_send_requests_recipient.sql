-- Owned by the gateway: the console's search of an account's sends by recipient, newest first.
CREATE INDEX send_requests_recipient ON send_requests (account_id, lower(recipient), requested_at DESC, status_id);
