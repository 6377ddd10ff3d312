-- Owned by the gateway (issue 19): event webhooks (docs/webhooks.md). The API writes the endpoints
-- and replay requests; the dispatcher (python -m mailstream.gateway.webhooks) writes the queue and
-- the delivery log.
CREATE TABLE webhook_endpoints (
    id                          uuid PRIMARY KEY,
    account_id                  bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    url                         text NOT NULL,
    description                 text NOT NULL DEFAULT '',
    event_types                 text[] NOT NULL,
    enabled                     boolean NOT NULL DEFAULT true,
    -- HMAC keys: the dispatcher needs them as they are (a hash cannot sign); the API shows a secret once.
    secret                      text NOT NULL,
    previous_secret             text,
    previous_secret_expires_at  timestamptz,
    secret_rotated_at           timestamptz,
    created_at                  timestamptz NOT NULL DEFAULT now(),
    updated_at                  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_endpoints_account ON webhook_endpoints (account_id);

-- One row per (endpoint, event, origin): origin '' for the live stream, a replay's id for a replay.
-- DELIVERED rows keep their key (payload dropped) for a while, so an event read again from Kafka
-- after a crash is not queued twice.
CREATE TABLE webhook_queue (
    id               bigserial PRIMARY KEY,
    endpoint_id      uuid NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id         text NOT NULL,
    origin           text NOT NULL DEFAULT '',
    occurred_at      timestamptz NOT NULL,
    payload          jsonb,
    state            text NOT NULL DEFAULT 'PENDING' CHECK (state IN ('PENDING', 'DELIVERED', 'PARKED')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    lease_until      timestamptz,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz,
    UNIQUE (endpoint_id, event_id, origin)
);
CREATE INDEX webhook_queue_due ON webhook_queue (endpoint_id, next_attempt_at, id) WHERE state = 'PENDING';
CREATE INDEX webhook_queue_finished ON webhook_queue (finished_at) WHERE state <> 'PENDING';

-- The delivery log: one row per POST (and one per parking), newest first by id.
CREATE TABLE webhook_deliveries (
    id                bigserial PRIMARY KEY,
    endpoint_id       uuid NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    attempted_at      timestamptz NOT NULL DEFAULT now(),
    kind              text NOT NULL CHECK (kind IN ('EVENTS', 'TEST', 'PARKED')),
    outcome           text NOT NULL CHECK (outcome IN ('DELIVERED', 'FAILED', 'PARKED')),
    event_ids         text[] NOT NULL,
    attempt           integer,
    status_code       integer,
    error             text,
    duration_ms       integer,
    response_excerpt  text,
    origin            text NOT NULL DEFAULT ''
);
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, id DESC);
CREATE INDEX webhook_deliveries_time ON webhook_deliveries (attempted_at);

-- Replays: the events recorded on the topics from `since` to `until` queued again (origin = id).
CREATE TABLE webhook_replays (
    id            uuid PRIMARY KEY,
    endpoint_id   uuid NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    since         timestamptz NOT NULL,
    until         timestamptz NOT NULL,
    state         text NOT NULL DEFAULT 'PENDING' CHECK (state IN ('PENDING', 'RUNNING', 'DONE')),
    lease_until   timestamptz,
    events        integer NOT NULL DEFAULT 0,
    created_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz
);
CREATE INDEX webhook_replays_open ON webhook_replays (created_at) WHERE state <> 'DONE';
