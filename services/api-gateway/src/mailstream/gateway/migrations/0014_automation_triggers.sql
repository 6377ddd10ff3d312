-- Owned by the gateway (issue 16): emails saved for automation, trigger rules that turn records
-- on a customer's own Kafka topic into sends of such an email, and the rule each send came from.

-- Saved for automation: the email may be sent by trigger rules (like single_send_api, only a
-- draft can be saved; a published email is cloned first).
ALTER TABLE emails ADD COLUMN automation boolean NOT NULL DEFAULT false;

CREATE TABLE triggers (
    id                   uuid PRIMARY KEY,
    account_id           bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name                 text NOT NULL DEFAULT '',
    source_topic         text NOT NULL,
    record_format        text NOT NULL CHECK (record_format IN ('JSON', 'AVRO')),
    avro_schema          text,            -- an inline Avro schema (JSON text), or
    schema_registry_url  text,            -- a Confluent-compatible registry (magic byte + schema id)
    filter               jsonb NOT NULL DEFAULT '[]',   -- conditions, all must hold
    email_id             bigint NOT NULL,
    recipient_field      text NOT NULL,   -- dotted path
    contact_properties   jsonb NOT NULL DEFAULT '{}',   -- property -> dotted path
    custom_properties    jsonb NOT NULL DEFAULT '{}',   -- property -> dotted path
    send_id_template     text NOT NULL,
    enabled              boolean NOT NULL DEFAULT true,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX triggers_account ON triggers (account_id, created_at);

-- The rule a send was made by (NULL for API and SMTP sends): statuses are listed by it and its
-- statistics are counted over them.
ALTER TABLE send_requests ADD COLUMN trigger_id uuid;
CREATE INDEX send_requests_trigger ON send_requests (trigger_id, requested_at) WHERE trigger_id IS NOT NULL;
