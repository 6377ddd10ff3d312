"""The email events API's JSON and paging cursor (no database)."""

import uuid
from datetime import UTC, datetime

import pytest

from mailstream.gateway.event_views import (
    epoch_ms,
    event_view,
    events_page_view,
    from_epoch_ms,
    page_cursor,
    parse_page_cursor,
)

T0 = datetime(2026, 12, 3, 6, 0, 0, 123456, tzinfo=UTC)


def row(n: int, **extra):
    return {
        "id": uuid.UUID(int=n),
        "type": "OPEN",
        "created": T0,
        "recipient": "jane@example.com",
        "message_id": str(uuid.UUID(int=99)),
        "email_id": 7,
        "smtp_token_id": None,
        "email_campaign_id": None,
        "detail": {"userAgent": "Firefox", "type": "not this"},
        **extra,
    }


def test_created_is_epoch_milliseconds_both_ways():
    assert epoch_ms(T0) == 1796277600123
    assert from_epoch_ms(1796277600123) == T0.replace(microsecond=123000)


def test_an_event_has_hubspots_fields_and_its_detail():
    view = event_view(row(1, smtp_token_id="tok", email_campaign_id=10000001), account_id=5)
    assert view == {
        "id": str(uuid.UUID(int=1)),
        "created": 1796277600123,
        "type": "OPEN",  # the detail never overrides a field
        "portalId": 5,
        "recipient": "jane@example.com",
        "emailCampaignId": 10000001,
        "emailId": 7,
        "smtpTokenId": "tok",
        "hmid": str(uuid.UUID(int=99)),
        "userAgent": "Firefox",
    }


def test_the_offset_continues_after_the_last_event_to_the_microsecond():
    rows = [row(3), row(2), row(1)]
    page = events_page_view(rows, 2, account_id=5)
    assert page["hasMore"] is True and [e["id"] for e in page["events"]] == [str(uuid.UUID(int=n)) for n in (3, 2)]
    assert parse_page_cursor(page["offset"]) == (T0, uuid.UUID(int=2))
    assert page_cursor(row(2)) == page["offset"]
    last = events_page_view(rows[:1], 2, account_id=5)
    assert last["hasMore"] is False and "offset" not in last
    assert parse_page_cursor(None) is None and parse_page_cursor("") is None


@pytest.mark.parametrize("offset", ["x", "12", "-5_" + str(uuid.UUID(int=1)), "12_not-a-uuid"])
def test_a_malformed_offset_is_refused(offset):
    with pytest.raises(ValueError):
        parse_page_cursor(offset)
