-- The tracker writes each consumed batch in one transaction: statuses, tracked messages,
-- suppressions, first human engagements, statistics increments and these offsets together, so
-- a crash either loses the whole batch (read again from the offsets below) or none of it.

-- Where the tracker's consumer group stands on each partition it consumes: the next offset to
-- read. Authoritative (Kafka's committed offsets follow for tools and lag metrics). batch_first
-- is the first offset of the batch that wrote the row: a batch whose first offset is below the
-- stored next_offset was already written (by this process before a lost commit, or by another
-- after a rebalance) and is refused whole.
CREATE TABLE tracker_offsets (
    topic        text NOT NULL,
    partition    int NOT NULL,
    next_offset  bigint NOT NULL,
    batch_first  bigint NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, partition)
);

-- The first human open and the first human click of each recipient of each message: what the
-- *_unique_human counters count (replaces the Faust table engagement-first-human).
CREATE TABLE engagement_firsts (
    kind        text NOT NULL CHECK (kind IN ('OPEN', 'CLICK')),
    message_id  uuid NOT NULL,
    recipient   text NOT NULL,            -- lower-cased
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (message_id, kind, recipient)
);
