"""One-off sends of an email to many contacts: the audience, its filters, why a recipient is
skipped, and the progress figures. Pure: the adapters run the SQL these build, the fan-out
(fanout/) decides each recipient with the single send's rules (handlers.decide).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from mailstream.gateway.views import iso

# Namespace of one-off send ids derived from an idempotency key (uuid5).
ONE_OFF_NAMESPACE = uuid.UUID("6f0d3c1e-2b7a-4e59-8f3d-9a1c5e7b2d40")
ADDRESSES, ALL_CONTACTS, FILTER = "ADDRESSES", "ALL_CONTACTS", "FILTER"
EQ, IN, HAS_PROPERTY = "EQ", "IN", "HAS_PROPERTY"
ACTIVE_STATES = ("SCHEDULED", "QUEUED", "SENDING")

# A skipped recipient's sendResult (rules.refusal) -> the reason the progress counts it under.
SKIP_REASONS = {
    "PREVIOUSLY_UNSUBSCRIBED_PORTAL": "unsubscribed",
    "QUARANTINED_ADDRESS": "quarantined",
    "EMAIL_UNCONFIRMED": "unconfirmed",
    "PREVIOUSLY_BOUNCED": "bounced",
    "PREVIOUS_SPAM": "spamReported",
    "INVALID_TO_ADDRESS": "invalidAddress",
    "INVALID_FROM_ADDRESS": "invalidFrom",
    "MISSING_CONTENT": "missingContent",
    "UNCONFIGURED_SENDING_DOMAIN": "unconfiguredSendingDomain",
}
CANCELED = "canceled"
REASONS = (*dict.fromkeys(SKIP_REASONS.values()), CANCELED, "other")


def one_off_id(account_id: int, idempotency_key: str | None) -> str:
    """A new one-off send's id; derived from the idempotency key when there is one, so that a
    create retried after a lost answer names the same send (and the same recipient sendIds)."""
    if idempotency_key is None:
        return str(uuid.uuid4())
    return str(uuid.uuid5(ONE_OFF_NAMESPACE, f"{account_id}/{idempotency_key}"))


def recipient_send_id(one_off_send_id: str, address: str) -> str:
    """The sendId of one recipient's send: the same on every fan-out of the same batch, so a
    batch produced again after a crash is deduplicated like a repeated single send."""
    return f"oneoff-{one_off_send_id}-{address.lower()}"


@dataclass(frozen=True, slots=True)
class PropertyFilter:
    """One condition on a contact's properties: EQ (value), IN (values) or HAS_PROPERTY."""

    property: str
    operator: str
    value: str | None = None
    values: tuple[str, ...] = ()

    def matches(self, properties: dict[str, str]) -> bool:
        if self.operator == HAS_PROPERTY:
            return self.property in properties
        found = properties.get(self.property)
        if self.operator == EQ:
            return found is not None and found == self.value
        return found is not None and found in self.values


@dataclass(frozen=True, slots=True)
class Audience:
    kind: str  # ADDRESSES, ALL_CONTACTS or FILTER
    filters: tuple[PropertyFilter, ...] = ()

    def matches(self, properties: dict[str, str]) -> bool:
        """Whether a contact with these properties is in a contacts audience (all filters hold)."""
        return all(f.matches(properties) for f in self.filters)

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"type": self.kind}
        if self.kind == FILTER:
            body["filters"] = [filter_json(f) for f in self.filters]
        return body

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Audience:
        filters = tuple(
            PropertyFilter(f["property"], f["operator"], f.get("value"), tuple(f.get("values") or ()))
            for f in body.get("filters", ())
        )
        return cls(body["type"], filters)


def filter_json(f: PropertyFilter) -> dict[str, Any]:
    body: dict[str, Any] = {"property": f.property, "operator": f.operator}
    if f.operator == EQ:
        body["value"] = f.value
    elif f.operator == IN:
        body["values"] = list(f.values)
    return body


def filter_sql(filters: tuple[PropertyFilter, ...], first_param: int, column: str = "c.properties") -> tuple[str, list]:
    """The SQL condition (AND of the filters, 'true' for none) on a jsonb properties column, and its
    parameters numbered from first_param. Names and values are parameters, never SQL text."""
    parts, args = [], []
    n = first_param
    for f in filters:
        if f.operator == HAS_PROPERTY:
            parts.append(f"jsonb_exists({column}, ${n}::text)")
            args.append(f.property)
            n += 1
        elif f.operator == EQ:
            parts.append(f"({column} ->> ${n}::text) = ${n + 1}::text")
            args += [f.property, f.value]
            n += 2
        elif f.operator == IN:
            parts.append(f"({column} ->> ${n}::text) = ANY(${n + 1}::text[])")
            args += [f.property, list(f.values)]
            n += 2
        else:
            raise ValueError(f"unknown filter operator {f.operator!r}")
    return (" AND ".join(parts) or "true"), args


def skip_reason(send_result: str) -> str:
    return SKIP_REASONS.get(send_result, "other")


@dataclass(frozen=True, slots=True)
class Tally:
    """What the statuses of a one-off send's recipients say: how many of each (gateway result,
    outcome status, outcome result), from one grouped query."""

    rows: tuple[tuple[str | None, str | None, str | None, int], ...]

    def figures(self) -> dict[str, Any]:
        accepted = sent = failed = 0
        skipped = dict.fromkeys(REASONS, 0)
        for gateway_result, status, send_result, count in self.rows:
            if gateway_result is not None:
                skipped[skip_reason(gateway_result)] += count
                continue
            accepted += count
            if status == "COMPLETE" and send_result == "SENT":
                sent += count
            elif status in ("COMPLETE", "CANCELED"):
                failed += count
        return {"accepted": accepted, "sent": sent, "failed": failed, "pending": accepted - sent - failed, **skipped}


def progress(row: dict[str, Any], tally: Tally) -> dict[str, Any]:
    """The progress figures: targeted = accepted + skipped once the fan-out is done or canceled
    (while it runs, targeted is the audience counted at its start); accepted = sent + failed +
    pending. A cancel skips the recipients not fanned out yet (skipped.canceled)."""
    f = tally.figures()
    targeted = row["targeted"]
    if row["state"] == "CANCELED":
        f[CANCELED] = max(0, (targeted or 0) - row["processed"])
    skipped = {reason: f[reason] for reason in REASONS}
    return {
        "targeted": targeted,
        "processed": row["processed"],
        "accepted": f["accepted"],
        "sent": f["sent"],
        "failed": f["failed"],
        "pending": f["pending"],
        "skipped": {"total": sum(skipped.values()), "byReason": skipped},
    }


def one_off_view(row: dict[str, Any], tally: Tally) -> dict[str, Any]:
    audience = row["audience"]
    return {
        "id": str(row["id"]),
        "emailId": row["email_id"],
        "emailVersion": row["email_version"],
        "audience": audience,
        "state": row["state"],
        "idempotencyKey": row["idempotency_key"],
        "sendAt": iso(row["send_at"]),
        "createdAt": iso(row["created_at"]),
        "startedAt": iso(row["started_at"]),
        "completedAt": iso(row["completed_at"]),
        "canceledAt": iso(row["canceled_at"]),
        "progress": progress(row, tally),
    }
