"""The tracker's Faust tables (changelogged to Kafka; the memory store rebuilds from the changelog).

- first_human: unique-human memory, keyed "KIND:message:recipient" -> True. email.engagement is keyed
  by message id, so the table is co-partitioned with it.
- counts: statistics counters, keyed "account/dimension/id" -> {counter: value}, co-partitioned with
  the internal increments topic; materialized to PostgreSQL's `stats` by a timer.
"""

import faust

from mailstream.schemas.topics import ENGAGEMENT
from mailstream.tracker.app import app
from mailstream.tracker.stats import IncrementBuffer
from mailstream.tracker.topics import STATS_PARTITIONS

_json = faust.Schema(key_serializer="json", value_serializer="json")
# The changelogs are compacted, but only closed segments are: with Kafka's default 1 GB / 7 day
# segments a restart replayed every counter update ever written (~50 s after a day of tests).
# One-minute segments keep a replay near one record per key.
_compacted = {"segment.ms": 60_000, "min.cleanable.dirty.ratio": 0.1}

first_human = app.Table(
    "engagement-first-human",
    default=bool,
    partitions=ENGAGEMENT.partitions,
    schema=_json,
    extra_topic_configs=_compacted,
)
counts = app.Table(
    "stats-counts", default=dict, partitions=STATS_PARTITIONS, schema=_json, extra_topic_configs=_compacted
)

# Statistics keys changed since the last materialization -> their partition (only the worker that
# owns a partition now writes its rows, so a rebalance never lets stale counts overwrite newer ones).
dirty: dict[str, int] = {}
# Statistics increments not yet forwarded to the increments topic (forwarded every 0.1 s).
pending_increments = IncrementBuffer()
