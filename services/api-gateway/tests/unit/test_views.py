from datetime import UTC, datetime

from mailstream.gateway.rules import valid_address
from mailstream.gateway.views import iso, status_view

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


def test_address_validation():
    assert valid_address("jane@example.com")
    for bad in ("jane", "jane@localhost", "a@b.example\r\nBcc: x@y.example", "Jane <jane@example.com>", "@x.com"):
        assert not valid_address(bad), bad
