"""One-off sends to many contacts, the pure parts: the audience filters (Python semantics and the
SQL they build), the recipients' decisions (the single send's rules through handlers.decide),
the skip reasons and the progress figures. The SQL itself runs in tests/e2e/test_one_off_sends.py."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from mailstream.gateway.adapters.accepting import EmailFacts
from mailstream.gateway.fanout.batch import decide_recipients
from mailstream.gateway.handlers import Facts, send_ids
from mailstream.gateway.one_off import (
    EQ,
    FILTER,
    HAS_PROPERTY,
    IN,
    Audience,
    PropertyFilter,
    Tally,
    filter_sql,
    one_off_id,
    progress,
    recipient_send_id,
)
from mailstream.gateway.one_off_models import OneOffSendCreate
from mailstream.gateway.rules import RecipientFacts

ACCOUNT = 7
NOW = datetime(2026, 12, 3, 6, 0, tzinfo=UTC)
ONE_OFF = "3f1c9a52-0000-4000-8000-000000000001"


def email(kind: str) -> EmailFacts:
    return EmailFacts(11, ACCOUNT, "DRAFT", False, 2, kind, "news@shop.example")


class TestFilters:
    PROPS = {"plan": "pro", "country": "FR"}

    @pytest.mark.parametrize(
        ("flt", "expected"),
        [
            (PropertyFilter("plan", EQ, "pro"), True),
            (PropertyFilter("plan", EQ, "free"), False),
            (PropertyFilter("missing", EQ, ""), False),
            (PropertyFilter("country", IN, values=("DE", "FR")), True),
            (PropertyFilter("country", IN, values=("DE",)), False),
            (PropertyFilter("country", HAS_PROPERTY), True),
            (PropertyFilter("city", HAS_PROPERTY), False),
        ],
    )
    def test_one_filter(self, flt, expected):
        assert flt.matches(self.PROPS) is expected

    def test_every_filter_must_hold(self):
        both = Audience(FILTER, (PropertyFilter("plan", EQ, "pro"), PropertyFilter("country", IN, values=("DE",))))
        assert not both.matches(self.PROPS)
        assert Audience(FILTER, both.filters[:1]).matches(self.PROPS)

    def test_the_sql_takes_names_and_values_as_parameters(self):
        filters = (
            PropertyFilter("plan'; DROP TABLE contacts; --", EQ, "pro"),
            PropertyFilter("country", IN, values=("DE", "FR")),
            PropertyFilter("vip", HAS_PROPERTY),
        )
        sql, args = filter_sql(filters, 5)
        assert sql == (
            "(c.properties ->> $5::text) = $6::text AND (c.properties ->> $7::text) = ANY($8::text[])"
            " AND jsonb_exists(c.properties, $9::text)"
        )
        assert args == ["plan'; DROP TABLE contacts; --", "pro", "country", ["DE", "FR"], "vip"]
        assert "DROP" not in sql

    def test_no_filter_is_every_contact(self):
        assert filter_sql((), 3) == ("true", [])

    def test_the_audience_survives_its_json(self):
        audience = Audience(FILTER, (PropertyFilter("plan", EQ, "pro"), PropertyFilter("c", IN, values=("a", "b"))))
        assert Audience.from_json(audience.to_json()) == audience


class TestRequest:
    def body(self, **audience):
        return {"emailId": 1, "audience": audience}

    @pytest.mark.parametrize(
        "audience",
        [
            {},
            {"allContacts": True, "addresses": ["a@b.example"]},
            {"allContacts": False},
            {"filters": [{"property": "plan", "operator": "EQ"}]},
            {"filters": [{"property": "plan", "operator": "IN", "value": "x"}]},
            {"filters": [{"property": "plan", "operator": "HAS_PROPERTY", "value": "x"}]},
            {"filters": [{"property": "plan", "operator": "LIKE", "value": "x"}]},
        ],
    )
    def test_an_unclear_audience_is_refused(self, audience):
        with pytest.raises(ValidationError):
            OneOffSendCreate.model_validate(self.body(**audience))

    def test_a_clear_audience_is_taken(self):
        OneOffSendCreate.model_validate(self.body(filters=[{"property": "plan", "operator": "IN", "values": ["x"]}]))
        OneOffSendCreate.model_validate(self.body(allContacts=True))


class TestRecipients:
    ROW = {"id": ONE_OFF, "account_id": ACCOUNT, "email_id": 11, "custom_properties": {"k": "v"}}
    STATES = {
        "plain@x.example": RecipientFacts(),
        "subscribed@x.example": RecipientFacts(subscription_status="SUBSCRIBED"),
        "unsub@x.example": RecipientFacts(subscription_status="UNSUBSCRIBED"),
        "quarantined@x.example": RecipientFacts(quarantined=True),
        "pending@x.example": RecipientFacts(double_opt_in="PENDING"),
        "bounced@x.example": RecipientFacts(bounced=True),
        "suppressed@x.example": RecipientFacts(suppressions=frozenset({"BOUNCED"})),
        "reported@x.example": RecipientFacts(suppressions=frozenset({"SPAM_REPORT"})),
        "noreply@x.example": RecipientFacts(),
    }

    def decided(self, kind: str):
        facts = Facts(
            emails={(ACCOUNT, 11): email(kind)},
            recipients={(ACCOUNT, a): f for a, f in self.STATES.items()},
            domains={},
        )
        decided = decide_recipients(self.ROW, list(self.STATES), facts, NOW, require_sending_domain=False)
        return {p.row.recipient: p for p in decided}

    def test_transactional_bypasses_subscription_quarantine_and_double_opt_in(self):
        decided = self.decided("TRANSACTIONAL")
        sent = {a for a, p in decided.items() if p.event is not None}
        assert sent == {
            "plain@x.example",
            "subscribed@x.example",
            "unsub@x.example",
            "quarantined@x.example",
            "pending@x.example",
        }
        assert decided["bounced@x.example"].row.send_result == "PREVIOUSLY_BOUNCED"
        assert decided["suppressed@x.example"].row.send_result == "PREVIOUSLY_BOUNCED"
        assert decided["reported@x.example"].row.send_result == "PREVIOUS_SPAM"
        assert decided["noreply@x.example"].row.send_result == "INVALID_TO_ADDRESS"

    def test_marketing_goes_only_to_who_may_receive_it(self):
        decided = self.decided("MARKETING")
        assert {a for a, p in decided.items() if p.event is not None} == {"plain@x.example", "subscribed@x.example"}
        assert decided["unsub@x.example"].row.send_result == "PREVIOUSLY_UNSUBSCRIBED_PORTAL"
        assert decided["quarantined@x.example"].row.send_result == "QUARANTINED_ADDRESS"
        assert decided["pending@x.example"].row.send_result == "EMAIL_UNCONFIRMED"

    def test_each_recipient_has_fixed_ids_and_names_its_one_off_send(self):
        first, again = self.decided("TRANSACTIONAL"), self.decided("TRANSACTIONAL")
        p = first["plain@x.example"]
        assert p.row.send_id == recipient_send_id(ONE_OFF, "plain@x.example") == f"oneoff-{ONE_OFF}-plain@x.example"
        assert (p.row.status_id, p.row.message_id) == send_ids(ACCOUNT, p.row.send_id)
        assert again["plain@x.example"].row == p.row  # a batch fanned out again: the same rows and ids
        assert p.event.one_off_send_id == ONE_OFF and p.event.email_version == 2
        assert p.event.custom_properties_json == '{"k": "v"}'

    def test_an_idempotency_key_names_the_same_send(self):
        assert one_off_id(ACCOUNT, "k1") == one_off_id(ACCOUNT, "k1") != one_off_id(ACCOUNT + 1, "k1")
        assert one_off_id(ACCOUNT, None) != one_off_id(ACCOUNT, None)


class TestProgress:
    TALLY = Tally(
        (
            (None, "COMPLETE", "SENT", 600),
            (None, "COMPLETE", "PREVIOUSLY_UNSUBSCRIBED_PORTAL", 5),  # the renderer dropped it
            (None, "PROCESSING", None, 20),
            (None, None, None, 10),
            ("PREVIOUSLY_BOUNCED", None, None, 50),
            ("QUARANTINED_ADDRESS", None, None, 100),
            ("PREVIOUSLY_UNSUBSCRIBED_PORTAL", None, None, 215),
        )
    )

    def test_the_figures_add_up_when_done(self):
        p = progress({"state": "DONE", "targeted": 1000, "processed": 1000}, self.TALLY)
        assert (p["accepted"], p["sent"], p["failed"], p["pending"]) == (635, 600, 5, 30)
        assert p["skipped"]["byReason"]["bounced"] == 50
        assert p["skipped"]["byReason"]["quarantined"] == 100
        assert p["skipped"]["byReason"]["unsubscribed"] == 215
        assert p["skipped"]["total"] == 365
        assert p["accepted"] + p["skipped"]["total"] == p["targeted"] == 1000
        assert p["sent"] + p["failed"] + p["pending"] == p["accepted"]

    def test_a_cancel_skips_the_rest(self):
        p = progress({"state": "CANCELED", "targeted": 5000, "processed": 1000}, self.TALLY)
        assert p["skipped"]["byReason"]["canceled"] == 4000
        assert p["accepted"] + p["skipped"]["total"] == p["targeted"] == 5000
