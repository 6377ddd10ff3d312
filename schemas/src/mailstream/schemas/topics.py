"""The topic registry: every topic's name, key, value record, partitions and configs, once.

No other module spells a topic name; services look topics up here (a test greps for it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mailstream.schemas.records import (
    DeliveryAttempted,
    EmailRendered,
    EngagementRecorded,
    MessageRendered,
    OneOffSendRequested,
    RecordDeadLettered,
    SendRequested,
    SuppressionChanged,
    UnsubscribeRecorded,
)

DAY_MS = 24 * 3600 * 1000
# A rendered message with tracking can be several MB; producers and consumers allow the same.
MAX_MESSAGE_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    key: str  # what the record key is, for readers and for partitioning
    value_type: type
    partitions: int
    retention_ms: int = 7 * DAY_MS
    compacted: bool = False
    extra_configs: dict[str, str] = field(default_factory=dict)

    @property
    def configs(self) -> dict[str, str]:
        configs = {
            "retention.ms": str(self.retention_ms),
            "cleanup.policy": "compact" if self.compacted else "delete",
            "max.message.bytes": str(MAX_MESSAGE_BYTES),
        }
        configs.update(self.extra_configs)
        return configs


SEND_REQUESTED = TopicSpec(
    name="email.send.requested",
    key="recipient address, lower-cased (keeps one recipient's sends in order)",
    value_type=SendRequested,
    partitions=6,
)
RENDERED = TopicSpec(
    name="email.rendered",
    key="assigned sending IP (one sender process owns an IP's traffic and its limits)",
    value_type=EmailRendered,
    partitions=6,
)
RENDERED_META = TopicSpec(
    name="email.rendered.meta",
    key="message id",
    value_type=MessageRendered,
    partitions=6,
)
DELIVERY = TopicSpec(
    name="email.delivery",
    key="message id",
    value_type=DeliveryAttempted,
    partitions=6,
    retention_ms=30 * DAY_MS,
)
ENGAGEMENT = TopicSpec(
    name="email.engagement",
    key="message id",
    value_type=EngagementRecorded,
    partitions=6,
    retention_ms=30 * DAY_MS,
)
UNSUBSCRIBE = TopicSpec(
    name="email.unsubscribe",
    key="account id and recipient address",
    value_type=UnsubscribeRecorded,
    partitions=3,
    retention_ms=30 * DAY_MS,
)
SUPPRESSION_CHANGES = TopicSpec(
    name="email.suppression.changes",
    key="account id and recipient address",
    value_type=SuppressionChanged,
    partitions=3,
    retention_ms=30 * DAY_MS,
)
ONE_OFF_SEND_REQUESTED = TopicSpec(
    name="email.one-off.requested",
    key="one-off send id",
    value_type=OneOffSendRequested,
    partitions=3,
)
DEAD_LETTER = TopicSpec(
    name="email.dead-letter",
    key="the original record's key",
    value_type=RecordDeadLettered,
    partitions=1,
    retention_ms=30 * DAY_MS,
)

# Delay topics for deferred deliveries (non-blocking retry). A deferred EmailRendered goes to
# the tier whose delay fits its backoff, with `not_before` set; the sender's policy maps tiers
# to delays. Records within a tier wait roughly equally long, so FIFO order is due order.
RETRY_TIERS: tuple[TopicSpec, ...] = tuple(
    TopicSpec(
        name=f"email.rendered.retry.{tier}",
        key="assigned sending IP (as email.rendered)",
        value_type=EmailRendered,
        partitions=6,
        retention_ms=14 * DAY_MS,
    )
    for tier in (1, 2, 3, 4)
)

TOPICS: tuple[TopicSpec, ...] = (
    SEND_REQUESTED,
    RENDERED,
    *RETRY_TIERS,
    RENDERED_META,
    DELIVERY,
    ENGAGEMENT,
    UNSUBSCRIBE,
    SUPPRESSION_CHANGES,
    ONE_OFF_SEND_REQUESTED,
    DEAD_LETTER,
)
BY_NAME: dict[str, TopicSpec] = {t.name: t for t in TOPICS}
