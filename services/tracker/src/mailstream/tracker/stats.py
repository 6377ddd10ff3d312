"""Statistics folding: which counters an event moves, per account, per email, per SMTP token and per
automation trigger rule (issue 16). Pure.

The counters are the contract of `mailstream.schemas.counters` (the `stats` table's columns).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from mailstream.schemas import DeliveryOutcome, EngagementKind
from mailstream.schemas.counters import COUNTERS

FIELDS = COUNTERS
Delta = dict[str, int]


@dataclass(frozen=True, slots=True)
class StatsKey:
    account_id: int
    dimension: str  # account | email | token | trigger
    dimension_id: str

    def encode(self) -> str:
        return f"{self.account_id}/{self.dimension}/{self.dimension_id}"

    @classmethod
    def decode(cls, text: str) -> StatsKey:
        account, dimension, dimension_id = text.split("/", 2)
        return cls(int(account), dimension, dimension_id)


def keys_for(
    account_id: int, email_id: int | None, smtp_token_id: str | None, trigger_id: str | None = None
) -> list[StatsKey]:
    keys = [StatsKey(account_id, "account", str(account_id))]
    if email_id is not None:
        keys.append(StatsKey(account_id, "email", str(email_id)))
    if smtp_token_id:
        keys.append(StatsKey(account_id, "token", smtp_token_id))
    if trigger_id:
        keys.append(StatsKey(account_id, "trigger", trigger_id))
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


def summed(increments: Iterable[tuple[StatsKey, Delta]]) -> dict[StatsKey, Delta]:
    """Increments summed per key: one row change per counter row and batch."""
    totals: dict[StatsKey, Delta] = {}
    for key, delta in increments:
        totals[key] = fold(totals.get(key, {}), delta)
    return totals


def rate(numerator: int, delivered: int) -> float | None:
    return numerator / delivered if delivered else None
