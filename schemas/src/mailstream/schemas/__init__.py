"""Contracts shared by every mailstream service: Avro schemas, typed records, topics, codec."""

from mailstream.schemas.codec import DecodeError, codec, decode, encode
from mailstream.schemas.records import (
    DeliveryAttempted,
    DeliveryOutcome,
    EmailRendered,
    EngagementKind,
    EngagementRecorded,
    MessageRendered,
    OneOffSendRequested,
    RecordDeadLettered,
    SendRequested,
    SendSource,
    SubscriptionType,
    SuppressionAction,
    SuppressionChanged,
    UnsubscribeReason,
    UnsubscribeRecorded,
    dead_lettered,
)
from mailstream.schemas.send_results import SendResult
from mailstream.schemas.topics import BY_NAME, RETRY_TIERS, TOPICS, TopicSpec

__all__ = [
    "BY_NAME",
    "RETRY_TIERS",
    "TOPICS",
    "DecodeError",
    "DeliveryAttempted",
    "DeliveryOutcome",
    "EmailRendered",
    "EngagementKind",
    "EngagementRecorded",
    "MessageRendered",
    "OneOffSendRequested",
    "RecordDeadLettered",
    "SendRequested",
    "SendResult",
    "SendSource",
    "SubscriptionType",
    "SuppressionAction",
    "SuppressionChanged",
    "TopicSpec",
    "UnsubscribeReason",
    "UnsubscribeRecorded",
    "codec",
    "dead_lettered",
    "decode",
    "encode",
]
