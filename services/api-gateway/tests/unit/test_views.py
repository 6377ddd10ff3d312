from datetime import UTC, datetime

from mailstream.gateway.views import iso, stats_view, status_view
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
