"""In-memory ports for the handler tests."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from mailstream.renderer.pools import Pool
from mailstream.renderer.ports import EmailVersion, Ports
from mailstream.renderer.render import compile_email
from mailstream.renderer.return_path import ReturnPath
from mailstream.renderer.rules import RecipientStatus
from mailstream.renderer.tracking import Tracker
from mailstream.schemas import SendRequested, SubscriptionType
from mailstream.schemas.links import LinkSigner
from mailstream.schemas.return_paths import ReturnPaths

TRACKING_BASE = "https://t.mailstream.example"
SIGNER = LinkSigner({"k1": b"unit-test-link-key-0123456789"})
RETURN_PATHS = ReturnPaths({"k1": b"unit-test-link-key-0123456789"})
POOLS = {
    "shared": Pool("shared", ("127.0.0.9",), (1,)),
    "acme-dedicated": Pool("acme-dedicated", ("127.0.0.7",), (1,)),
}
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def version(**overrides) -> EmailVersion:
    fields = dict(
        subject="Order {{ custom.order_id }}",
        html='<html><body><p>Hi {{ contact.firstname }}</p><a href="https://shop.example/o?id=1&amp;x=2">Order</a>'
        "</body></html>",
        text=None,
        from_name="Shop",
        subscription_type=SubscriptionType.TRANSACTIONAL,
        tracking=True,
    )
    fields.update(overrides)
    return EmailVersion(
        email_id=5,
        version=1,
        from_name=fields["from_name"],
        from_email="orders@shop.example",
        reply_to=("help@shop.example",),
        subscription_type=fields["subscription_type"],
        tracking=fields["tracking"],
        compiled=compile_email(
            fields["subject"], fields["html"], fields["text"], fields["from_name"], tracking=fields["tracking"]
        ),
    )


def request(**overrides) -> SendRequested:
    fields = dict(
        message_id="3f0c6a4e-0000-4000-8000-000000000001",
        status_id="s-1",
        account_id=1,
        to="jane@example.com",
        requested_at=NOW,
        email_id=5,
        email_version=1,
        cc=("cc@example.com",),
        bcc=("hidden@example.com",),
        contact_properties={"firstname": "Jäne"},
        custom_properties_json=json.dumps({"order_id": "1001"}),
    )
    fields.update(overrides)
    return SendRequested(**fields)


class FakeEmails:
    def __init__(self, email: EmailVersion) -> None:
        self.email = email
        self.asked: list[set] = []

    async def load_many(self, keys):
        self.asked.append(set(keys))
        return {key: self.email if key == (1, 5, 1) else None for key in keys}


class FakeRecipients:
    def __init__(self, status: RecipientStatus | None = None) -> None:
        self.value = status or RecipientStatus.unknown()
        self.asked: list[tuple[int, str]] = []

    async def statuses(self, keys):
        self.asked.extend(sorted(keys))
        return dict.fromkeys(keys, self.value)


class FakeAccountPools:
    def __init__(self, mapping: dict[int, str] | None = None) -> None:
        self.mapping = mapping or {}

    async def dedicated_many(self, account_ids):
        return {a: self.mapping.get(a) for a in account_ids}


def ports(email=None, status=None, account_pools=None) -> Ports:
    return Ports(
        emails=FakeEmails(email or version()),
        recipients=FakeRecipients(status),
        account_pools=FakeAccountPools(account_pools),
        pools=POOLS,
        tracker=Tracker(SIGNER, TRACKING_BASE),
        return_path=ReturnPath(RETURN_PATHS, "bounces"),
        clock=lambda: NOW,
    )
