"""Registry topics bound to the Faust app (values decoded in the agents), and the tracker's one
internal topic: statistics increments, keyed by statistics key so one partition owns each counter."""

import faust

from mailstream.schemas.topics import DEAD_LETTER, DELIVERY, ENGAGEMENT, RENDERED, UNSUBSCRIBE, TopicSpec
from mailstream.tracker.app import app

STATS_PARTITIONS = 6


def bind(spec: TopicSpec):
    return app.topic(
        spec.name,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=spec.partitions,
    )


rendered = bind(RENDERED)
delivery = bind(DELIVERY)
engagement = bind(ENGAGEMENT)
unsubscribe = bind(UNSUBSCRIBE)
dead_letter = bind(DEAD_LETTER)

# key: StatsKey.encode() ("account/dimension/id"); value: {counter: increment}
stats_increments = app.topic(
    "mailstream-tracker-stats-increments",
    schema=faust.Schema(key_serializer="json", value_serializer="json"),
    partitions=STATS_PARTITIONS,
    internal=True,
)
