-- Owned by the sender: one row per message whose delivery ended (accepted, bounced, dropped).
-- A redelivered Kafka record whose message is here is not sent again: the stored outcome
-- event is published again instead (consumers treat it idempotently by event_id).
CREATE TABLE deliveries (
    message_id    uuid PRIMARY KEY,
    outcome       text NOT NULL,
    outcome_event bytea NOT NULL,          -- the encoded DeliveryAttempted
    recorded_at   timestamptz NOT NULL DEFAULT now()
);
