"""Removing one suppression (routes/suppressions.request_removal), with fakes for the contacts
adapter, the pool and Kafka: which reasons it accepts, the required note, the 404, and that the
change published names only the reason removed while the contact's own status is lifted."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from gateway_fakes import FakePool

from mailstream.gateway.adapters import contacts
from mailstream.gateway.errors import ApiError
from mailstream.gateway.routes import suppressions
from mailstream.schemas import SuppressionAction, SuppressionChanged, decode
from mailstream.schemas.topics import SUPPRESSION_CHANGES


class FakeKafka:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes]] = []

    async def send(self, topic: str, value: bytes, key: bytes) -> None:
        self.sent.append((topic, value, key))


@pytest.fixture
def world(monkeypatch):
    """The address's tracker suppressions and contact row, and what was cleared and published."""
    state = SimpleNamespace(suppressed=["SPAM_REPORT", "UNSUBSCRIBED"], contact=None, cleared=[])

    async def suppressions_of(pool, account_id, email):
        return state.suppressed

    async def get_contact(pool, account_id, email):
        return state.contact

    async def clear_status(conn, account_id, email, reason):
        state.cleared.append((account_id, email, reason))

    monkeypatch.setattr(contacts, "suppressions_of", suppressions_of)
    monkeypatch.setattr(contacts, "get_contact", get_contact)
    monkeypatch.setattr(contacts, "clear_status", clear_status)
    state.deps = SimpleNamespace(pool=FakePool(), kafka=FakeKafka())
    return state


def test_every_reason_the_tracker_keeps_but_manual_has_a_contact_status_twin():
    assert set(suppressions.REASONS) == {"BOUNCED", "SPAM_REPORT", "UNSUBSCRIBED", "MANUAL"}
    assert set(contacts.STATUS_OF_REASON) == set(suppressions.REASONS) - {"MANUAL"}


@pytest.mark.parametrize("reason", ["unsubscribed", "", "BOUNCED OR 1=1"])
async def test_an_unknown_reason_is_refused_before_anything_is_read(world, reason):
    with pytest.raises(ApiError) as refused:
        await suppressions.request_removal(world.deps, 7, "a@b.example", reason, "asked again", "me")
    assert refused.value.status == 400 and "suppression" in refused.value.message
    assert world.deps.kafka.sent == [] and world.cleared == []


@pytest.mark.parametrize("note", ["", "   ", "x" * 1001])
async def test_the_note_is_required_and_bounded(world, note):
    with pytest.raises(ApiError) as refused:
        await suppressions.request_removal(world.deps, 7, "a@b.example", "UNSUBSCRIBED", note, "me")
    assert refused.value.status == 400 and "reason for the removal" in refused.value.message
    assert world.deps.kafka.sent == []


async def test_a_reason_the_address_has_not_is_404(world):
    with pytest.raises(ApiError) as missing:
        await suppressions.request_removal(world.deps, 7, "a@b.example", "BOUNCED", "mailbox restored", "me")
    assert missing.value.status == 404 and missing.value.message == "Bounce suppression of a@b.example not found"


async def test_the_contacts_own_status_alone_is_enough_to_remove(world):
    world.suppressed = []
    world.contact = {"bounced": False, "spam_reported": False, "subscription_status": "UNSUBSCRIBED"}
    view = await suppressions.request_removal(world.deps, 7, "a@b.example", "UNSUBSCRIBED", "subscribed again", "me")
    assert view["suppression"] == "UNSUBSCRIBED" and world.cleared == [(7, "a@b.example", "UNSUBSCRIBED")]


async def test_a_manual_suppression_is_removed_without_touching_the_contact(world):
    world.suppressed = ["MANUAL"]
    view = await suppressions.request_removal(world.deps, 7, "a@b.example", "MANUAL", "asked to be mailed again", "me")
    ((_, value, _),) = world.deps.kafka.sent
    assert decode(value, SuppressionChanged).reason == "MANUAL" and view["action"] == "REMOVE"
    assert world.cleared == [(7, "a@b.example", "MANUAL")]  # clear_status: MANUAL has no status twin


async def test_the_change_published_names_only_the_reason_removed(world):
    view = await suppressions.request_removal(
        world.deps, 7, "Ann@Shop.example", "SPAM_REPORT", "  asked us to write again ", "console-user:ada@shop.example"
    )
    ((topic, value, key),) = world.deps.kafka.sent
    change = decode(value, SuppressionChanged)
    assert topic == SUPPRESSION_CHANGES.name and key == b"7:ann@shop.example"
    assert (change.action, change.reason) == (SuppressionAction.REMOVE, "SPAM_REPORT")
    assert change.address == "ann@shop.example"
    assert change.note == "asked us to write again" and change.requested_by == "console-user:ada@shop.example"
    assert view["eventId"] == change.event_id and world.cleared == [(7, "ann@shop.example", "SPAM_REPORT")]


@pytest.mark.parametrize(
    ("reason", "contact", "says"),
    [
        ("BOUNCED", {"bounced": True}, True),
        ("BOUNCED", {"bounced": False}, False),
        ("SPAM_REPORT", {"spam_reported": True}, True),
        ("UNSUBSCRIBED", {"subscription_status": "UNSUBSCRIBED"}, True),
        ("UNSUBSCRIBED", {"subscription_status": "SUBSCRIBED"}, False),
        ("UNSUBSCRIBED", None, False),
        ("MANUAL", {"bounced": True, "spam_reported": True, "subscription_status": "UNSUBSCRIBED"}, False),
    ],
)
def test_the_contacts_status_that_stops_mail_for_a_reason(reason, contact, says):
    assert contacts.status_says(contact, reason) is says
