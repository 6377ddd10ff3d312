-- Owned by the tracker: where each accepted send stands, from the delivery events.
-- The gateway's status endpoint reads it joined with its own send_requests.
CREATE TABLE send_outcomes (
    status_id      uuid PRIMARY KEY,
    message_id     uuid NOT NULL,
    account_id     bigint NOT NULL,
    status         text NOT NULL CHECK (status IN ('PENDING', 'PROCESSING', 'COMPLETE', 'CANCELED')),
    send_result    text,
    started_at     timestamptz,
    completed_at   timestamptz,
    event_id       uuid,          -- the SENT event, when the email went out
    event_created  timestamptz,
    updated_at     timestamptz NOT NULL DEFAULT now()
);
