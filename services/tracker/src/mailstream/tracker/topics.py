"""Registry topics bound to the Faust app (values decoded in the agents)."""

from mailstream.schemas.topics import DEAD_LETTER, DELIVERY, RENDERED, TopicSpec
from mailstream.tracker.app import app


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
dead_letter = bind(DEAD_LETTER)
