"""Statistics folding: which counters an event moves, per account, per email and per SMTP token. Pure.

Counters (columns of the `stats` table):
- sent: messages rendered and handed to the sender (once per message);
- delivered / bounced / dropped: the message's final delivery outcome (once per message);
- opens_total / clicks_total: every OPEN / CLICK event, human and machine;
- opens_machine / clicks_machine: the events flagged machine;
- opens_unique_human / clicks_unique_human: distinct (message, recipient) with a human open / click;
- spam_reports: SPAM_REPORT events; unsubscribes: email.unsubscribe events (any reason).
Open rate = opens_unique_human / delivered, click rate = clicks_unique_human / delivered.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from mailstream.schemas import DeliveryOutcome, EngagementKind

FIELDS = (
    "sent",
    "delivered",
    "bounced",
    "dropped",
    "opens_total",
    "opens_unique_human",
    "opens_machine",
    "clicks_total",
    "clicks_unique_human",
    "clicks_machine",
    "spam_reports",
    "unsubscribes",
)
Delta = dict[str, int]


@dataclass(frozen=True, slots=True)
class StatsKey:
    account_id: int
    dimension: str  # account | email | token
    dimension_id: str

    def encode(self) -> str:
        return f"{self.account_id}/{self.dimension}/{self.dimension_id}"

    @classmethod
    def decode(cls, text: str) -> StatsKey:
        account, dimension, dimension_id = text.split("/", 2)
        return cls(int(account), dimension, dimension_id)


def keys_for(account_id: int, email_id: int | None, smtp_token_id: str | None) -> list[StatsKey]:
    keys = [StatsKey(account_id, "account", str(account_id))]
    if email_id is not None:
        keys.append(StatsKey(account_id, "email", str(email_id)))
    if smtp_token_id:
        keys.append(StatsKey(account_id, "token", smtp_token_id))
    return keys


def engagement_delta(kind: EngagementKind, *, machine: bool, first_human: bool) -> Delta:
    if kind is EngagementKind.SPAM_REPORT:
        return {"spam_reports": 1}
    prefix = "opens" if kind is EngagementKind.OPEN else "clicks"
    delta = {f"{prefix}_total": 1}
    if machine:
        delta[f"{prefix}_machine"] = 1
    elif first_human:
        delta[f"{prefix}_unique_human"] = 1
    return delta


def unique_key(kind: EngagementKind, message_id: str, recipient: str) -> str:
    """The key under which a first human open / click of one recipient of one message is remembered."""
    return f"{kind.value}:{message_id}:{recipient.lower()}"


_OUTCOME_FIELD = {
    DeliveryOutcome.DELIVERED: "delivered",
    DeliveryOutcome.BOUNCED: "bounced",
    DeliveryOutcome.DROPPED: "dropped",
}


def outcome_delta(outcome: DeliveryOutcome) -> Delta:
    """The counter a final outcome moves (a deferral is not final: nothing)."""
    field = _OUTCOME_FIELD.get(outcome)
    return {field: 1} if field else {}


def fold(counts: Mapping[str, int], delta: Mapping[str, int]) -> dict[str, int]:
    merged = dict(counts)
    for name, amount in delta.items():
        if name not in FIELDS:
            raise ValueError(f"unknown statistic {name!r}")
        merged[name] = merged.get(name, 0) + amount
    return merged


class IncrementBuffer:
    """Increments summed per key between two forwards: hot counters move once per tick, not per event."""

    def __init__(self) -> None:
        self._pending: dict[StatsKey, Delta] = {}

    def add(self, increments: list[tuple[StatsKey, Delta]]) -> None:
        for key, delta in increments:
            self._pending[key] = fold(self._pending.get(key, {}), delta)

    def drain(self) -> list[tuple[StatsKey, Delta]]:
        pending, self._pending = self._pending, {}
        return list(pending.items())


def rate(numerator: int, delivered: int) -> float | None:
    return numerator / delivered if delivered else None
