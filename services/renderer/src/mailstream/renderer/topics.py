"""Registry topics bound to the Faust app; values stay bytes and are decoded in the agents,
so that a record that cannot be decoded is dead-lettered with its reason."""

from mailstream.renderer.app import app
from mailstream.schemas.topics import DEAD_LETTER, DELIVERY, RENDERED, SEND_REQUESTED, TopicSpec


def bind(spec: TopicSpec):
    return app.topic(
        spec.name,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=spec.partitions,
    )


send_requested = bind(SEND_REQUESTED)
rendered = bind(RENDERED)
delivery = bind(DELIVERY)
dead_letter = bind(DEAD_LETTER)
