"""The suppressions API: the list's filter, cursor and CSV rows, the checks of bulk inputs and of
the bulk clear's confirmation (pure), the show view's history and causes, and the list and bulk
routes through the app with fakes for the contacts adapter, the pool and Kafka."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from uuid import UUID

import httpx
import pytest
from gateway_fakes import FakePool

from mailstream.gateway.adapters import contacts
from mailstream.gateway.app import create_app
from mailstream.gateway.caches import Caches
from mailstream.gateway.deps import Dependencies
from mailstream.gateway.keys import KeyGrant, hash_api_key
from mailstream.gateway.routes.suppressions import suppressions_view
from mailstream.gateway.scopes import ALL_SCOPES
from mailstream.gateway.suppression_list import (
    MAX_BATCH,
    BatchEntry,
    InvalidInput,
    ListFilter,
    batch_entries,
    check_clear_all,
    csv_lines,
    list_filter,
    page_cursor,
    parse_cursor,
)
from mailstream.schemas import SuppressionAction, SuppressionChanged, decode

T0 = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
MESSAGE = UUID("4d7c9a8e-1111-4222-8333-944455556666")


def row(address, reason, *, message_id=None, detail=None, created_at=T0):
    return {"address": address, "reason": reason, "created_at": created_at, "message_id": message_id, "detail": detail}


# ---- the list's filter and cursor -------------------------------------------------------------


def test_q_starting_with_at_is_a_domain_and_anything_else_a_part_of_the_address():
    assert list_filter(reason=None, since=None, q=" @Shop.Example ") == ListFilter(domain="shop.example")
    assert list_filter(reason=None, since=None, q="ann@") == ListFilter(contains="ann@")
    assert list_filter(reason=None, since=None, q="@") == ListFilter(contains="@")
    assert list_filter(reason=None, since=None, q=None) == ListFilter()


def test_the_reason_filter_is_one_of_the_four_and_since_needs_a_time_zone():
    assert list_filter(reason="manual", since=T0, q="").reason == "MANUAL"
    with pytest.raises(InvalidInput) as bad:
        list_filter(reason="HARD_BOUNCE", since=None, q=None)
    assert bad.value.field == "reason"
    with pytest.raises(InvalidInput) as naive:
        list_filter(reason=None, since=datetime(2026, 12, 1), q=None)
    assert naive.value.field == "since"


def test_the_cursor_names_the_last_row_and_comes_back_from_after():
    last = row("o'neil+x@shop.example", "SPAM_REPORT")
    assert parse_cursor(page_cursor(last)) == ("o'neil+x@shop.example", "SPAM_REPORT")
    assert parse_cursor(None) is None and parse_cursor("") is None


@pytest.mark.parametrize("after", ["nope", "!!!", "YUBiLmV4YW1wbGU", "YUBiLmV4YW1wbGUKV0hBVA"])
def test_a_cursor_not_made_here_is_refused(after):
    with pytest.raises(InvalidInput) as bad:
        parse_cursor(after)
    assert bad.value.field == "after"


# ---- CSV ---------------------------------------------------------------------------------------


def test_csv_rows_have_a_header_once_and_quote_what_a_spreadsheet_would_run():
    rows = [
        row("a@b.example", "BOUNCED", message_id=MESSAGE, detail="550 hard, no such user"),
        row("c@d.example", "MANUAL", detail="=HYPERLINK(1)"),
    ]
    text = csv_lines(rows, header=True) + csv_lines([row("e@f.example", "UNSUBSCRIBED")], header=False)
    parsed = list(csv.reader(io.StringIO(text)))
    assert parsed == [
        ["address", "reason", "createdAt", "messageId", "detail"],
        ["a@b.example", "BOUNCED", "2026-12-01T09:30:00.000Z", str(MESSAGE), "550 hard, no such user"],
        ["c@d.example", "MANUAL", "2026-12-01T09:30:00.000Z", "", "'=HYPERLINK(1)"],
        ["e@f.example", "UNSUBSCRIBED", "2026-12-01T09:30:00.000Z", "", ""],
    ]


# ---- bulk inputs and the confirmation ------------------------------------------------------------


def test_bulk_inputs_are_lower_cased_defaulted_and_repeats_dropped():
    inputs = [
        {"email": "Ann@Shop.example", "note": "asked"},
        {"email": "ann@shop.example"},
        {"email": "b@shop.example", "reason": "unsubscribed"},
    ]
    assert batch_entries(inputs, default_reason="MANUAL") == [
        BatchEntry("ann@shop.example", "MANUAL", "asked"),
        BatchEntry("b@shop.example", "UNSUBSCRIBED", None),
    ]
    assert batch_entries([{"email": "a@b.example"}], default_reason=None) == [BatchEntry("a@b.example", None)]


@pytest.mark.parametrize(
    ("inputs", "field"),
    [
        ([], "inputs"),
        ([{"email": f"u{i}@b.example"} for i in range(MAX_BATCH + 1)], "inputs"),
        ([{"email": "a@b.example"}, {"email": "not an address"}], "inputs[1].email"),
        ([{"email": "a@b.example", "reason": "HARD"}], "inputs[0].reason"),
        ([{"email": "a@b.example", "note": "x" * 1001}], "inputs[0].note"),
    ],
)
def test_one_bad_input_refuses_the_whole_batch_naming_it(inputs, field):
    with pytest.raises(InvalidInput) as bad:
        batch_entries(inputs, default_reason="MANUAL")
    assert bad.value.field == field


@pytest.mark.parametrize("confirm", [None, "", "8", " 7", "yes"])
def test_a_bulk_clear_needs_the_accounts_own_id(confirm):
    with pytest.raises(InvalidInput) as bad:
        check_clear_all(confirm=confirm, account_id=7)
    assert bad.value.field == "confirm"
    check_clear_all(confirm="7", account_id=7)


# ---- GET {email}: current suppressions and the history with their causes ----------------------


def test_the_history_says_which_event_or_request_caused_each_change():
    bounce_event = UUID("0e0e0e0e-1111-4222-8333-944455556666")
    current = [
        {
            **row("a@b.example", "BOUNCED", message_id=MESSAGE, detail="550 no such user"),
            "event_id": bounce_event,
            "event_type": "BOUNCE",
        },
        {
            **row("a@b.example", "MANUAL", detail="fraud", created_at=T0.replace(hour=11)),
            "event_id": None,
            "event_type": None,
        },
    ]
    history = [
        {
            "event_id": "11111111-1111-4222-8333-944455556666",
            "action": "ADD",
            "reason": "MANUAL",
            "changed": ["MANUAL"],
            "note": "fraud",
            "requested_by": "api-key:3",
            "requested_at": T0.replace(hour=11),
            "applied_at": T0.replace(hour=11),
        }
    ]
    view = suppressions_view("a@b.example", current, history)
    assert view["suppressions"] == ["BOUNCED", "MANUAL"]
    assert view["current"][0]["causedBy"] == {"type": "BOUNCE", "eventId": str(bounce_event), "messageId": str(MESSAGE)}
    assert view["current"][1]["causedBy"] is None
    # the bounce (made by the tracker from the event) first, then the requested MANUAL add, once
    assert [(e["action"], e["suppression"], e["requestedBy"]) for e in view["history"]] == [
        ("ADD", "BOUNCED", "tracker"),
        ("ADD", "MANUAL", "api-key:3"),
    ]
    assert view["history"][0]["causedBy"]["eventId"] == str(bounce_event)
    assert view["history"][1]["causedBy"] == {
        "type": "SUPPRESSION_CHANGE",
        "eventId": history[0]["event_id"],
        "messageId": None,
    }


# ---- the list and bulk routes through the app ----------------------------------------------------

KEY, ACCOUNT = "ms_test-key", 7
AUTH = {"Authorization": f"Bearer {KEY}"}
BASE = "/mailstream/v1/suppressions"


class FakeKafka:
    def __init__(self) -> None:
        self.batches: list[list[SuppressionChanged]] = []

    async def send_all(self, records):
        raise AssertionError("no send here")

    async def send_many(self, topic, records):
        self.batches.append([decode(value, SuppressionChanged) for _, value in records])


@pytest.fixture
def world(monkeypatch):
    rows = sorted((row(f"u{i:04}@b.example", "MANUAL") for i in range(2500)), key=lambda r: r["address"])
    state = {"rows": rows, "cleared": [], "kafka": FakeKafka()}

    async def suppression_page(pool, account_id, where, *, after, limit):
        assert account_id == ACCOUNT
        found = [r for r in state["rows"] if (where.reason is None or r["reason"] == where.reason)]
        found = [r for r in found if after is None or (r["address"], r["reason"]) > after]
        return found[:limit]

    async def clear_statuses(conn, account_id, emails, reason):
        state["cleared"].append((reason, len(emails)))

    monkeypatch.setattr(contacts, "suppression_page", suppression_page)
    monkeypatch.setattr(contacts, "clear_statuses", clear_statuses)
    return state


def api(kafka) -> httpx.AsyncClient:
    caches = Caches(api_key_ttl_s=60)
    caches.set_listening(True)
    caches.remember_key(hash_api_key(KEY), KeyGrant(ACCOUNT, 1, ALL_SCOPES))
    app = create_app(Dependencies(pool=FakePool(), kafka=kafka, caches=caches))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway")


async def test_the_list_pages_with_after_and_the_export_is_not_taken_for_an_address(world):
    async with api(world["kafka"]) as client:
        first = (await client.get(BASE, headers=AUTH, params={"limit": 2})).json()
        assert [r["address"] for r in first["results"]] == ["u0000@b.example", "u0001@b.example"]
        after = first["paging"]["next"]["after"]
        second = (await client.get(BASE, headers=AUTH, params={"limit": 2, "after": after})).json()
        assert second["results"][0]["address"] == "u0002@b.example"
        assert (await client.get(BASE, headers=AUTH, params={"after": "nope"})).json()["category"] == "VALIDATION_ERROR"
        exported = await client.get(BASE + "/export.csv", headers=AUTH)
        assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
        lines = exported.text.splitlines()
        assert lines[0] == "address,reason,createdAt,messageId,detail" and len(lines) == 2501  # 3 pages read


async def test_a_bulk_clear_without_the_right_confirmation_is_a_400_and_publishes_nothing(world):
    async with api(world["kafka"]) as client:
        for body in (
            {"all": True, "note": "reset"},
            {"all": True, "confirm": "8", "note": "reset"},
            {"all": True, "confirm": "7", "note": "reset", "inputs": [{"email": "a@b.example"}]},
            {"all": True, "confirm": "7", "note": " "},
            {"confirm": "7", "note": "reset", "inputs": [{"email": "a@b.example"}]},
        ):
            refused = await client.post(BASE + "/batch/remove", headers=AUTH, json=body)
            assert refused.status_code == 400 and refused.json()["status"] == "error", body
            if refused.json()["errors"][0]["in"] == "confirm":
                assert refused.json()["context"] == {"confirm": ["7"]}
        assert world["kafka"].batches == []


async def test_a_confirmed_bulk_clear_removes_every_row_one_batch_per_page(world):
    async with api(world["kafka"]) as client:
        done = await client.post(
            BASE + "/batch/remove", headers=AUTH, json={"all": True, "confirm": "7", "note": "reset"}
        )
        assert done.status_code == 202 and done.json() == {"action": "REMOVE", "requested": 2500}
    assert [len(b) for b in world["kafka"].batches] == [1000, 1000, 500]
    change = world["kafka"].batches[0][0]
    assert (change.action, change.reason, change.note, change.requested_by) == (
        SuppressionAction.REMOVE,
        "MANUAL",
        "reset",
        "api-key:1",
    )


async def test_a_bulk_add_is_one_batch_of_adds_defaulting_to_manual(world):
    inputs = [{"email": f"n{i}@b.example"} for i in range(50)] + [{"email": "x@b.example", "reason": "UNSUBSCRIBED"}]
    async with api(world["kafka"]) as client:
        done = await client.post(BASE + "/batch/add", headers=AUTH, json={"inputs": inputs})
        assert done.status_code == 202 and done.json()["requested"] == 51
        too_many = [{"email": f"n{i}@b.example"} for i in range(MAX_BATCH + 1)]
        assert (await client.post(BASE + "/batch/add", headers=AUTH, json={"inputs": too_many})).status_code == 400
    (batch,) = world["kafka"].batches
    assert {c.action for c in batch} == {SuppressionAction.ADD}
    assert [c.reason for c in batch].count("MANUAL") == 50 and batch[-1].reason == "UNSUBSCRIBED"
