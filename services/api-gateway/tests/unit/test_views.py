import dataclasses
from datetime import UTC, datetime

import pytest

from mailstream.gateway.adapters.tokens_store import TokenRow
from mailstream.gateway.views import (
    iso,
    parse_token_cursor,
    stats_view,
    status_view,
    token_page_view,
    token_statistics_view,
    token_view,
)
from mailstream.schemas import SendResult

T0 = datetime(2026, 11, 28, 12, 0, 0, 120000, tzinfo=UTC)


def test_timestamps_are_iso_utc_with_milliseconds():
    assert iso(T0) == "2026-11-28T12:00:00.120Z"


def test_a_pending_send_has_only_its_request_time():
    assert status_view({"status_id": "s", "requested_at": T0}) == {
        "statusId": "s",
        "requestedAt": iso(T0),
        "status": "PENDING",
    }


def test_a_completed_send_carries_result_times_and_event():
    view = status_view(
        {
            "status_id": "s",
            "requested_at": T0,
            "status": "COMPLETE",
            "send_result": "SENT",
            "started_at": T0,
            "completed_at": T0,
            "event_id": "e",
            "event_created": T0,
        }
    )
    assert view["sendResult"] == "SENT" and view["eventId"] == {"id": "e", "created": iso(T0)}


def test_a_send_the_gateway_ended_is_complete_with_its_result():
    view = status_view(
        {"status_id": "s", "requested_at": T0, "gateway_result": "MISSING_CONTENT", "gateway_completed_at": T0}
    )
    assert (view["status"], view["sendResult"]) == ("COMPLETE", "MISSING_CONTENT")
    assert "single-send API" in view["message"]


def test_a_canceled_send_is_canceled_without_result():
    view = status_view({"status_id": "s", "requested_at": T0, "canceled_at": T0, "status": None})
    assert view == {"statusId": "s", "requestedAt": iso(T0), "status": "CANCELED", "completedAt": iso(T0)}


def test_every_one_of_the_51_send_results_passes_through_the_status_view():
    assert len(SendResult) == 51
    for result in SendResult:
        row = {"status_id": "s", "requested_at": T0, "status": "COMPLETE", "send_result": result.value}
        assert status_view(row)["sendResult"] == result.value


def test_rates_are_unique_human_over_delivered_and_zero_without_deliveries():
    row = {"delivered": 8, "opens_unique_human": 2, "opens_total": 9, "clicks_unique_human": 1, "updated_at": T0}
    view = stats_view("email", "7", row)
    assert (view["openRate"], view["clickRate"], view["opens"]) == (0.25, 0.125, 9)
    empty = stats_view("account", "1", None)
    assert (empty["openRate"], empty["clickRate"], empty["sent"], empty["updatedAt"]) == (0.0, 0.0, 0, None)


def test_status_views_conform_to_the_documented_schema():
    from mailstream.gateway.models import EmailSendStatusView

    rows = [
        {"status_id": "s", "requested_at": T0},
        {"status_id": "s", "requested_at": T0, "gateway_result": "PREVIOUS_SPAM", "gateway_completed_at": T0},
        {"status_id": "s", "requested_at": T0, "canceled_at": T0},
        {
            "status_id": "s",
            "requested_at": T0,
            "status": "COMPLETE",
            "send_result": "SENT",
            "started_at": T0,
            "completed_at": T0,
            "event_id": "e",
            "event_created": T0,
        },
    ]
    for row in rows:
        view = status_view(row)
        assert EmailSendStatusView.model_validate(view).model_dump(exclude_none=True) == view


TOKEN = TokenRow(
    id="abc123",
    account_id=7,
    password_hash="$argon2id$...",
    campaign_name="Receipts",
    email_campaign_id=10000042,
    create_contact=True,
    created_by="ops@shop.example",
    created_at=datetime(2026, 3, 1, 10, 0, tzinfo=UTC),
)


def test_the_token_view_has_the_password_only_when_given():
    view = token_view(TOKEN)
    assert view == {
        "id": "abc123",
        "createdBy": "ops@shop.example",
        "emailCampaignId": "10000042",
        "createdAt": "2026-03-01T10:00:00.000Z",
        "createContact": True,
        "campaignName": "Receipts",
    }
    assert token_view(TOKEN, password="secret")["password"] == "secret"


def test_a_token_page_has_paging_next_after_only_when_there_is_more():
    second = dataclasses.replace(TOKEN, id="def456", email_campaign_id=10000043)
    page = token_page_view([TOKEN, second], 1, lambda after: f"/next?after={after}")
    assert [t["id"] for t in page["results"]] == ["abc123"]
    assert page["paging"] == {"next": {"after": "10000042", "link": "/next?after=10000042"}}
    assert "paging" not in token_page_view([TOKEN, second], 2, str)


@pytest.mark.parametrize("raw, parsed", [(None, 0), ("", 0), ("10000042", 10000042)])
def test_token_cursors_parse(raw, parsed):
    assert parse_token_cursor(raw) == parsed


@pytest.mark.parametrize("raw", ["abc", "-1", "1.5"])
def test_malformed_token_cursors_are_refused(raw):
    with pytest.raises(ValueError):
        parse_token_cursor(raw)


def test_token_statistics_are_zero_without_a_row_and_rates_are_unique_human_over_delivered():
    empty = token_statistics_view(TOKEN, None)
    assert set(empty["counters"].values()) == {0} and empty["ratios"] == {"openRate": 0.0, "clickRate": 0.0}
    assert empty["updatedAt"] is None
    row = {
        "sent": 10,
        "delivered": 8,
        "bounced": 2,
        "opens_total": 9,
        "opens_unique_human": 4,
        "opens_machine": 3,
        "clicks_total": 2,
        "clicks_unique_human": 2,
        "spam_reports": 1,
        "updated_at": TOKEN.created_at,
    }
    view = token_statistics_view(TOKEN, row)
    assert (
        view["counters"]["sent"] == 10 and view["counters"]["uniqueOpens"] == 4 and view["counters"]["spamReports"] == 1
    )
    assert view["ratios"] == {"openRate": 0.5, "clickRate": 0.25}
    assert view["tokenId"] == "abc123" and view["emailCampaignId"] == "10000042"
    assert view["updatedAt"] == "2026-03-01T10:00:00.000Z"
