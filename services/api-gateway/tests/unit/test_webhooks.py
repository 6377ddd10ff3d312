"""Webhooks (issue 19): signing checked by the snippet docs/webhooks.md publishes, the retry
schedule, the URL policy, the payloads of each record kind, batching, and the delivery loop's
bookkeeping of a 2xx, a failure and the final failure (fakes for the store and the endpoint)."""

from __future__ import annotations

import ipaddress
import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from gateway_fakes import FakePool
from webhook_snippet import load_verify

from mailstream.gateway.adapters import webhooks_store as store
from mailstream.gateway.webhooks import delivery as delivery_module
from mailstream.gateway.webhooks.client import Attempt
from mailstream.gateway.webhooks.delivery import Deliveries, DeliveryConfig, body_of, cut, request_headers
from mailstream.gateway.webhooks.events import EVENT_TYPES, event_of
from mailstream.gateway.webhooks.intake import matches
from mailstream.gateway.webhooks.retry import DEFAULT_DELAYS_S, RetrySchedule, ScheduleError
from mailstream.gateway.webhooks.signing import HEADER, new_secret, signature_header
from mailstream.gateway.webhooks.url_policy import (
    TargetRefused,
    address_refusal,
    check_addresses,
    check_url,
    parse_networks,
)
from mailstream.schemas import DeliveryAttempted, EngagementRecorded, UnsubscribeRecorded
from mailstream.schemas.records import DeliveryOutcome, EngagementKind, UnsubscribeReason

verify = load_verify()
EVERYWHERE = parse_networks(["0.0.0.0/0", "::/0"])
LOOPBACK = parse_networks(["127.0.0.0/8", "::1/128"])
AT = datetime(2026, 12, 7, 14, 0, tzinfo=UTC)


class TestSignatureAndTheDocumentedSnippet:
    def test_a_signed_body_verifies(self):
        secret, body = new_secret(), b'[{"event_id":"e1"}]'
        header = signature_header([secret], int(time.time()), body)
        assert verify(secret, header, body)

    def test_a_tampered_body_fails(self):
        secret, body = new_secret(), b'[{"event_id":"e1","event":"delivered"}]'
        header = signature_header([secret], int(time.time()), body)
        assert not verify(secret, header, body.replace(b"delivered", b"bounced"))

    def test_a_tampered_signature_or_timestamp_fails(self):
        secret, body, now = new_secret(), b"[]", int(time.time())
        header = signature_header([secret], now, body)
        digest = header.split("v1=")[1]
        flipped = ("0" if digest[0] != "0" else "1") + digest[1:]
        assert not verify(secret, f"t={now},v1={flipped}", body)
        assert not verify(secret, header.replace(f"t={now}", f"t={now - 1}"), body)

    def test_another_secret_fails(self):
        body = b"[]"
        assert not verify(new_secret(), signature_header([new_secret()], int(time.time()), body), body)

    def test_an_old_timestamp_fails_a_replayed_request(self):
        secret, body = new_secret(), b"[]"
        old = int(time.time()) - 301
        header = signature_header([secret], old, body)
        assert verify(secret, header, body, now=old + 10)
        assert not verify(secret, header, body)
        assert not verify(secret, signature_header([secret], int(time.time()) + 400, body), body)

    def test_during_an_overlap_both_secrets_verify(self):
        old, new, body = new_secret(), new_secret(), b"[]"
        header = signature_header([new, old], int(time.time()), body)
        assert header.count("v1=") == 2
        assert verify(old, header, body) and verify(new, header, body)

    def test_a_malformed_header_fails(self):
        for header in ("", "t=x,v1=ab", "v1=ab", "garbage"):
            assert not verify("whsec_x", header, b"[]")

    def test_request_headers_carry_the_signature_and_the_replay(self):
        headers = request_headers("ep", ["s"], b"[]", 3, {"r-1"})
        assert headers[HEADER].startswith("t=") and headers["Mailstream-Replay-Id"] == "r-1"
        assert headers["Mailstream-Event-Count"] == "3"
        assert "Mailstream-Replay-Id" not in request_headers("ep", ["s"], b"[]", 3, {"", "r-1"})


class TestRetrySchedule:
    def test_the_published_default_doubles_is_capped_at_8_h_and_ends_at_24_h(self):
        schedule = RetrySchedule()
        assert schedule.delays_s == DEFAULT_DELAYS_S
        assert sum(schedule.delays_s) == 86400
        assert max(schedule.delays_s) == 8 * 3600
        assert list(schedule.delays_s[:9]) == [60 * 2**i for i in range(9)]
        assert schedule.attempts == 12

    def test_the_setting_default_is_the_published_schedule(self):
        from mailstream.gateway.settings import GatewaySettings

        assert RetrySchedule.parse(GatewaySettings().webhook_retry_delays) == RetrySchedule()

    def test_delay_after_each_failure_then_park(self):
        schedule = RetrySchedule.parse("1,2.5,4")
        assert [schedule.delay_after(n) for n in (1, 2, 3, 4)] == [1.0, 2.5, 4.0, None]

    @pytest.mark.parametrize("text", ["0,1", "-1", "abc", "28801", ",".join(["28800"] * 4)])
    def test_refuses_a_bad_schedule(self, text):
        with pytest.raises(ScheduleError):
            RetrySchedule.parse(text)


class TestUrlPolicy:
    @pytest.mark.parametrize(
        "url",
        [
            "ftp://hooks.example.com/x",
            "file:///etc/passwd",
            "javascript:alert(1)",
            "http:///nohost",
            "https://user:pw@hooks.example.com/",
            "http://hooks.example.com:99999/",
            "hooks.example.com/x",
        ],
    )
    def test_refuses_what_is_not_a_plain_http_url(self, url):
        with pytest.raises(TargetRefused):
            check_url(url, allowed=EVERYWHERE)

    @pytest.mark.parametrize(
        "url",
        [
            "http://127.0.0.1/",
            "http://127.9.9.9:8080/",
            "http://10.0.0.5/",
            "http://172.16.0.1/",
            "http://192.168.1.1/",
            "http://169.254.169.254/latest/meta-data",
            "http://100.64.0.1/",
            "http://0.0.0.0/",
            "http://224.0.0.1/",
            "http://[::1]/",
            "http://[fe80::1]/",
            "http://[fc00::1]/",
            "http://[fd12:3456::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:10.0.0.1]/",
            "http://[2002:7f00:1::]/",  # 6to4 of 127.0.0.1
            "http://[64:ff9b::a00:1]/",  # NAT64 of 10.0.0.1
            "http://[::]/",
            "http://localhost:8080/",
            "http://api.localhost/",
        ],
    )
    def test_refuses_private_loopback_and_link_local_targets(self, url):
        with pytest.raises(TargetRefused):
            check_url(url)
        check_url(url, allowed=EVERYWHERE)  # the operator's setting allows them

    @pytest.mark.parametrize(
        "url", ["https://hooks.example.com/mailstream", "http://93.184.216.34/x", "https://[2606:4700::1111]/"]
    )
    def test_accepts_public_targets(self, url):
        check_url(url)

    def test_a_name_resolving_to_a_private_address_is_refused(self):
        with pytest.raises(TargetRefused, match=r"10\.1\.2\.3"):
            check_addresses("rebind.example.com", ["93.184.216.34", "10.1.2.3"])
        check_addresses("rebind.example.com", ["10.1.2.3"], allowed=EVERYWHERE)
        check_addresses("hooks.example.com", ["93.184.216.34", "2606:4700::1111"])

    def test_allowing_loopback_allows_loopback_only(self):
        for url in ("http://127.0.0.1:8080/", "http://[::1]/", "http://localhost/", "http://[::ffff:127.0.0.1]/"):
            check_url(url, allowed=LOOPBACK)
        for url in ("http://10.0.0.1/", "http://169.254.169.254/", "http://[fe80::1]/", "http://192.168.0.1/"):
            with pytest.raises(TargetRefused):
                check_url(url, allowed=LOOPBACK)
        with pytest.raises(ValueError, match="CIDR"):
            parse_networks(["not-a-net"])

    def test_refusals_name_the_kind_of_address(self):
        assert "loopback" in address_refusal(ipaddress.ip_address("::1"))
        assert "link-local" in address_refusal(ipaddress.ip_address("169.254.1.1"))
        assert "private" in address_refusal(ipaddress.ip_address("192.168.0.1"))
        assert address_refusal(ipaddress.ip_address("8.8.8.8")) is None


class TestPayloads:
    def test_each_delivery_outcome(self):
        for outcome, kind in zip(DeliveryOutcome, ("delivered", "deferred", "bounced", "dropped"), strict=True):
            record = DeliveryAttempted(
                event_id="ev-1", message_id="m-1", status_id="s-1", account_id=7, recipient="ann@example.com",
                outcome=outcome, send_result="SENT", occurred_at=AT, email_id=12, smtp_code=250,
                smtp_reply="250 ok", sending_ip="127.0.0.2", attempt=1, custom_args={"order_id": "1001"},
                categories=("receipt",),
            )  # fmt: skip
            event = event_of(record)
            assert event.type == kind and event.event_id == "ev-1" and event.account_id == 7
            payload = event.payload
            assert payload["event"] == kind and payload["event_id"] == "ev-1"
            assert payload["timestamp"] == int(AT.timestamp()) and payload["occurred_at"] == "2026-12-07T14:00:00Z"
            assert payload["email"] == "ann@example.com" and payload["custom_args"] == {"order_id": "1001"}
            assert payload["smtp_code"] == 250 and payload["response"] == "250 ok" and payload["email_id"] == 12
            assert payload["category"] == ["receipt"]
            assert "bounce_class" not in payload  # no value, no field
            json.dumps(payload)

    def test_engagement_kinds(self):
        for kind, name in zip(EngagementKind, ("opened", "clicked", "spam_report"), strict=True):
            record = EngagementRecorded(
                event_id="ev-2", kind=kind, message_id="m-1", account_id=7, recipient="ann@example.com",
                occurred_at=AT, url="https://shop.example/x", user_agent="UA", client_ip="203.0.113.9",
                custom_args={"a": "b"},
            )  # fmt: skip
            payload = event_of(record).payload
            assert payload["event"] == name and payload["url"] == "https://shop.example/x"
            assert payload["useragent"] == "UA" and payload["ip"] == "203.0.113.9" and payload["machine"] is False
            assert payload["custom_args"] == {"a": "b"} and payload["category"] == []

    def test_unsubscribe(self):
        record = UnsubscribeRecorded(
            event_id="ev-3", account_id=7, recipient="ann@example.com", reason=UnsubscribeReason.SPAM_REPORT,
            occurred_at=AT, message_id="m-1", custom_args={"a": "b"}, categories=("receipt",),
        )  # fmt: skip
        payload = event_of(record).payload
        assert payload["event"] == "unsubscribed" and payload["reason"] == "SPAM_REPORT"
        assert payload["custom_args"] == {"a": "b"} and payload["category"] == ["receipt"]

    def test_other_records_are_no_events(self):
        assert event_of(object()) is None

    def test_every_type_is_offered(self):
        assert set(EVENT_TYPES) == {
            "delivered", "deferred", "bounced", "dropped", "opened", "clicked", "spam_report", "unsubscribed",
        }  # fmt: skip


def _event(event_id: str, account: int, kind: DeliveryOutcome = DeliveryOutcome.DELIVERED):
    return event_of(
        DeliveryAttempted(
            event_id=event_id, message_id="m", status_id="s", account_id=account, recipient="a@example.com",
            outcome=kind, send_result="SENT", occurred_at=AT,
        )
    )  # fmt: skip


class TestIntakeMatching:
    def test_only_the_accounts_endpoints_that_want_the_type_recorded_after_their_creation(self):
        now_ms = int(AT.timestamp() * 1000)
        endpoints = [
            {"id": "e1", "account_id": 1, "event_types": ["delivered"], "created_at": AT - timedelta(hours=1)},
            {"id": "e2", "account_id": 1, "event_types": ["bounced"], "created_at": AT - timedelta(hours=1)},
            {"id": "e3", "account_id": 2, "event_types": list(EVENT_TYPES), "created_at": AT - timedelta(hours=1)},
            {"id": "e4", "account_id": 1, "event_types": list(EVENT_TYPES), "created_at": AT + timedelta(hours=1)},
        ]
        events = [(_event("x", 1), now_ms), (_event("y", 1, DeliveryOutcome.BOUNCED), now_ms)]
        assert [(i[0], i[1], i[2]) for i in matches(events, endpoints)] == [("e1", "x", ""), ("e2", "y", "")]
        # a replay takes what the live stream left out (before the endpoint's creation)
        replayed = matches(events, [endpoints[3]], origin="r-1")
        assert [(i[0], i[1], i[2]) for i in replayed] == [("e4", "x", "r-1"), ("e4", "y", "r-1")]


class TestBatching:
    def test_a_body_is_a_json_array_cut_before_the_byte_limit(self):
        rows = [{"payload": json.dumps({"event_id": str(i), "pad": "x" * 100})} for i in range(10)]
        taken, rest = cut(rows, 500)
        assert 1 <= len(taken) < 10 and len(taken) + len(rest) == 10
        assert len(body_of(taken)) <= 500
        assert [e["event_id"] for e in json.loads(body_of(taken))] == [str(i) for i in range(len(taken))]
        assert len(cut(rows[:1], 10)[0]) == 1  # one event always goes, however big


class FakeClient:
    def __init__(self, attempt: Attempt) -> None:
        self.attempt, self.posts = attempt, []

    async def post(self, url, body, headers):
        self.posts.append((url, body, headers))
        return self.attempt


class TestDeliveryBookkeeping:
    @pytest.fixture
    def recorded(self, monkeypatch):
        calls: dict[str, list] = {"delivered": [], "failed": [], "log": [], "released": []}
        rows = [
            {"id": 1, "event_id": "a", "origin": "", "attempts": 0, "payload": '{"event_id":"a"}'},
            {"id": 2, "event_id": "b", "origin": "", "attempts": 2, "payload": '{"event_id":"b"}'},
        ]

        async def signing_target(pool, endpoint_id):
            return {"id": endpoint_id, "url": "http://hooks.example.com/", "enabled": True, "secrets": ["whsec_k"]}

        async def claim(pool, endpoint_id, *, limit, lease_s):
            return [dict(r) for r in rows]

        async def release(pool, ids):
            calls["released"].append(list(ids))

        async def mark_delivered(conn, ids):
            calls["delivered"].append(list(ids))

        async def mark_failed(conn, retry, parked, error):
            calls["failed"].append((list(retry), list(parked), error))

        async def log_delivery(db, endpoint_id, **fields):
            calls["log"].append(fields)
            return fields

        for name, fake in [
            ("signing_target", signing_target),
            ("claim", claim),
            ("release", release),
            ("mark_delivered", mark_delivered),
            ("mark_failed", mark_failed),
            ("log_delivery", log_delivery),
        ]:
            monkeypatch.setattr(store, name, fake)
        return calls

    def deliveries(self, attempt: Attempt, delays: str = "1,2,3") -> tuple[Deliveries, FakeClient]:
        client = FakeClient(attempt)
        config = DeliveryConfig(RetrySchedule.parse(delays), 100, 1_000_000, 10.0, 4, 0.1)
        return Deliveries(FakePool(), client, config), client

    async def test_a_2xx_marks_the_batch_delivered_and_logs_one_entry(self, recorded):
        deliveries, client = self.deliveries(Attempt(True, 200, None, 5, "ok"))
        assert await deliveries.deliver_batch("ep") is False  # fewer than a full batch: nothing more due
        _, body, headers = client.posts[0]
        assert [e["event_id"] for e in json.loads(body)] == ["a", "b"]
        assert verify("whsec_k", headers[HEADER], body)
        assert recorded["delivered"] == [[1, 2]] and recorded["failed"] == []
        assert [(e["kind"], e["outcome"], e["event_ids"], e["attempt"]) for e in recorded["log"]] == [
            ("EVENTS", "DELIVERED", ["a", "b"], 3)
        ]

    async def test_a_failure_schedules_each_event_by_its_own_attempts(self, recorded):
        deliveries, _ = self.deliveries(Attempt(False, 500, "HTTP 500", 5))
        await deliveries.deliver_batch("ep")
        assert recorded["failed"] == [([(1, 1.0), (2, 3.0)], [], "HTTP 500")]
        assert [(e["kind"], e["outcome"]) for e in recorded["log"]] == [("EVENTS", "FAILED")]

    async def test_the_final_failure_parks_with_the_reason_in_one_entry(self, recorded, caplog):
        deliveries, _ = self.deliveries(Attempt(False, None, "ClientConnectorError: refused", 5), delays="1,2")
        with caplog.at_level("WARNING", logger="mailstream.gateway.webhooks"):
            await deliveries.deliver_batch("ep")
        assert recorded["failed"] == [([(1, 1.0)], [2], "ClientConnectorError: refused")]
        parked = [e for e in recorded["log"] if e["kind"] == "PARKED"]
        assert len(parked) == 1 and parked[0]["event_ids"] == ["b"] and "after 3 attempts" in parked[0]["error"]
        assert [r.message for r in caplog.records].count("webhook events parked") == 1
        assert delivery_module.EVENTS.labels("parked")._value.get() >= 1


class FakeResolver:
    def __init__(self, addresses: list[str]) -> None:
        self.addresses = addresses

    async def resolve(self, host, port=0, family=0):
        return [{"hostname": host, "host": a, "port": port, "family": family, "proto": 0, "flags": 0}
                for a in self.addresses]  # fmt: skip

    async def close(self):
        pass


class TestPolicyResolver:
    async def test_every_connection_is_checked_against_the_policy(self):
        from mailstream.gateway.webhooks.url_policy import PolicyResolver

        public = PolicyResolver(inner=FakeResolver(["93.184.216.34"]))
        assert len(await public.resolve("hooks.example.com", 443)) == 1
        rebinding = PolicyResolver(inner=FakeResolver(["93.184.216.34", "::ffff:169.254.169.254"]))
        with pytest.raises(TargetRefused, match="link-local"):
            await rebinding.resolve("hooks.example.com", 443)
        allowed = PolicyResolver(allowed=LOOPBACK, inner=FakeResolver(["127.0.0.1"]))
        assert len(await allowed.resolve("localhost", 80)) == 1
