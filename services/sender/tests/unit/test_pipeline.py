"""The delivery steps, one class per step, with fakes (no sockets)."""

import asyncio
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import aiosmtplib
import pytest

from mailstream.schemas import DeliveryOutcome, EmailRendered, SubscriptionType, decode
from mailstream.sender.adapters.dns import BadDomain, DnsTemporaryError, MxHost
from mailstream.sender.finish import Finish
from mailstream.sender.outcomes import Bounced, Deferred, Delivered, Dropped, Replayed, Rerouted, classify_smtp_error
from mailstream.sender.pipeline import (
    Attempt,
    CheckDuplicate,
    CheckThrottle,
    ChooseSourceIp,
    Deliver,
    DkimSign,
    Pipeline,
    ResolveRoute,
)
from mailstream.sender.policy import load_policy
from mailstream.sender.retry import RetrySchedule
from mailstream.sender.shaping import Shaper
from mailstream.sender.warmup import Position, grant

REPO = Path(__file__).resolve().parents[4]
POOLS = """
[sources.warm]
address = "127.0.0.2"
[sources.new]
address = "127.0.0.3"
warmup = "s"
warmup_started = 2026-11-28
[sources.new2]
address = "127.0.0.4"
warmup = "s"
warmup_started = 2026-11-28
[pools.shared.warm]
[pools.mixed.warm]
weight = 1
[pools.mixed.new]
weight = 3
[pools.cold.new]
[pools.cold.new2]
"""
SHAPING = """
[default]
max_message_rate = "1000/s"
[[default.automation]]
regex = "slow down"
action = "throttle"
max_message_rate = "1/min"
duration = "10m"
[domain."closed.example"]
tls = "required"
"""


@pytest.fixture
def policy(tmp_path):
    (tmp_path / "pools.toml").write_text(POOLS)
    (tmp_path / "shaping.toml").write_text(SHAPING)
    (tmp_path / "warmup.toml").write_text("[schedules.s]\ncaps = [2]\n")
    (tmp_path / "bounces.toml").write_text((REPO / "deploy/policy/bounces.toml").read_text())
    return load_policy(tmp_path)


def msg(**kw) -> EmailRendered:
    fields = dict(
        message_id="m-1",
        status_id="s-1",
        account_id=1,
        subscription_type=SubscriptionType.TRANSACTIONAL,
        mail_from="orders@shop.example",
        recipients=("jane@example.com",),
        pool="shared",
        sending_ip="127.0.0.2",
        sending_domain="shop.example",
        mime=b"From: orders@shop.example\r\nTo: jane@example.com\r\nSubject: x\r\n\r\nbody\r\n",
        requested_at=datetime.now(UTC),
        rendered_at=datetime.now(UTC),
    )
    fields.update(kw)
    return EmailRendered(**fields)


def attempt(policy=None, **kw) -> Attempt:
    a = Attempt(msg=msg(**kw), started=datetime.now(UTC), mime=msg(**kw).mime)
    if policy is not None:
        a.source = policy.source(a.msg.sending_ip)
    return a


class FakeRecords:
    def __init__(self):
        self.rows = {}

    async def finished_event(self, message_id):
        return self.rows.get(message_id, (None, None))[1]

    async def record(self, message_id, outcome, event):
        self.rows.setdefault(message_id, (outcome, event))


class FakeWarmupPositions:
    """The stored positions of adapters/warmup_positions.py, in a dict, by the same grant rule."""

    def __init__(self, first_use=None):
        self.first_use = dict(first_use or {})
        self.positions: dict[str, Position] = {}

    async def first_used_on(self, address):
        return self.first_use.get(address)

    async def take(self, address, window, *, today):
        self.first_use.setdefault(address, today)
        self.positions[address], granted = grant(self.positions.get(address), window, 1)
        return granted == 1


def at(day: date, seconds: float = 1000.0):
    """A clock stopped `seconds` into `day` (UTC)."""
    return lambda: datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(seconds=seconds)


DAY0 = date(2026, 11, 28)


class FakeTransport:
    def __init__(self, *outcomes):
        self.outcomes = list(outcomes)
        self.calls = []

    async def deliver(self, route, mail_from, recipients, mime, *, max_deliveries, before_connect, permit):
        self.calls.append((route, recipients))
        return self.outcomes.pop(0)


class TestCheckDuplicate:
    async def test_a_finished_message_is_replayed_not_sent(self):
        records = FakeRecords()
        await records.record("m-1", "DELIVERED", b"event")
        assert await CheckDuplicate(records)(attempt()) == Replayed(b"event")

    async def test_a_new_message_goes_on(self):
        assert await CheckDuplicate(FakeRecords())(attempt()) is None


class TestChooseSourceIp:
    async def test_a_warm_ip_is_kept(self, policy):
        step = ChooseSourceIp(policy, FakeWarmupPositions(), now=at(DAY0))
        a = attempt()
        assert await step(a) is None and a.source.address == "127.0.0.2"

    async def test_a_warming_ip_over_its_cap_overflows_to_a_warm_ip_of_its_pool(self, policy):
        step = ChooseSourceIp(policy, FakeWarmupPositions(), now=at(DAY0))
        results = [await step(attempt(sending_ip="127.0.0.3", pool="mixed")) for _ in range(4)]
        assert results[:2] == [None, None]  # the day-0 cap is 2 per hour
        assert results[2:] == [Rerouted("127.0.0.2", "127.0.0.3 reached its warm-up cap of 2")] * 2

    async def test_without_a_warm_ip_the_overflow_is_deferred_to_the_next_window(self, policy):
        step = ChooseSourceIp(policy, FakeWarmupPositions(), now=at(DAY0))
        for _ in range(2):
            assert await step(attempt(sending_ip="127.0.0.3", pool="cold")) is None
        result = await step(attempt(sending_ip="127.0.0.3", pool="cold"))
        assert isinstance(result, Deferred) and result.retry_after == pytest.approx(2600.0)

    async def test_the_count_is_the_stored_one_so_a_new_step_continues_it(self, policy):
        positions = FakeWarmupPositions()
        assert (
            await ChooseSourceIp(policy, positions, now=at(DAY0))(attempt(sending_ip="127.0.0.3", pool="cold")) is None
        )
        restarted = ChooseSourceIp(policy, positions, now=at(DAY0, 1500.0))
        assert await restarted(attempt(sending_ip="127.0.0.3", pool="cold")) is None
        assert isinstance(await restarted(attempt(sending_ip="127.0.0.3", pool="cold")), Deferred)

    async def test_a_store_that_is_down_stops_the_message_instead_of_letting_it_past_the_cap(self, policy):
        class Down(FakeWarmupPositions):
            async def take(self, address, window, *, today):
                raise ConnectionRefusedError("database down")

        with pytest.raises(ConnectionRefusedError):  # the batch is consumed again (intake.py)
            await ChooseSourceIp(policy, Down(), now=at(DAY0))(attempt(sending_ip="127.0.0.3", pool="cold"))

    async def test_a_warming_ip_that_never_sent_is_not_taken_for_a_warm_one(self, tmp_path):
        (tmp_path / "pools.toml").write_text(
            '[sources.a]\naddress = "127.0.0.2"\nwarmup = "s"\n[sources.b]\naddress = "127.0.0.3"\nwarmup = "s"\n'
            "[pools.shared.a]\n[pools.shared.b]\n"
        )
        (tmp_path / "warmup.toml").write_text("[schedules.s]\ncaps = [1]\n")
        positions = FakeWarmupPositions(first_use={"127.0.0.3": DAY0 - timedelta(days=5)})
        step = ChooseSourceIp(load_policy(tmp_path), positions, now=at(DAY0))
        assert await step(attempt(sending_ip="127.0.0.2")) is None  # its first use: day 0, a cap of 1
        assert positions.first_use["127.0.0.2"] == DAY0
        assert await step(attempt(sending_ip="127.0.0.2")) == Rerouted(
            "127.0.0.3", "127.0.0.2 reached its warm-up cap of 1"
        )
        positions.first_use["127.0.0.3"] = DAY0
        assert isinstance(await step(attempt(sending_ip="127.0.0.2")), Deferred)

    async def test_an_ip_outside_the_policy_moves_to_its_pool_and_is_never_bound(self, policy):
        step = ChooseSourceIp(policy, FakeWarmupPositions(), now=at(DAY0))
        result = await step(attempt(sending_ip="10.9.9.9", pool="mixed"))
        assert isinstance(result, Rerouted) and result.sending_ip in {"127.0.0.2", "127.0.0.3"}
        assert result.reason == "10.9.9.9 is not a source in the sending policy"

    async def test_an_ip_and_pool_outside_the_policy_are_deferred_with_the_reason(self, policy):
        step = ChooseSourceIp(policy, FakeWarmupPositions(), now=at(DAY0))
        result = await step(attempt(sending_ip="10.9.9.9", pool="gone"))
        assert isinstance(result, Deferred) and "neither 10.9.9.9 nor pool 'gone'" in result.reply

    async def test_the_cap_lifts_once_the_schedule_is_over(self, policy):
        step = ChooseSourceIp(policy, FakeWarmupPositions(), now=at(DAY0 + timedelta(days=1)))
        assert all([await step(attempt(sending_ip="127.0.0.3", pool="cold")) is None for _ in range(5)])


class TestResolveRoute:
    async def test_relay_mode_sends_everything_through_the_smart_host(self, policy):
        a = attempt(policy, recipients=("a@example.com", "b@other.example"))
        assert await ResolveRoute(policy, relay=("127.0.0.1", 2525), resolve=None)(a) is None
        (group,) = a.groups
        assert group.recipients == ["a@example.com", "b@other.example"]
        assert (group.routes[0].host, group.routes[0].port, group.routes[0].source_ip) == (
            "127.0.0.1",
            2525,
            "127.0.0.2",
        )

    async def test_direct_mode_groups_by_domain_in_mx_order(self, policy):
        async def resolve(domain):
            return (MxHost(f"mx1.{domain}", ("10.0.0.1",)), MxHost(f"mx2.{domain}", ("10.0.0.2",)))

        a = attempt(policy, recipients=("a@example.com", "b@other.example", "c@example.com"))
        assert await ResolveRoute(policy, relay=None, resolve=resolve, mx_port=2526)(a) is None
        assert [(g.domain, g.recipients) for g in a.groups] == [
            ("example.com", ["a@example.com", "c@example.com"]),
            ("other.example", ["b@other.example"]),
        ]
        assert [(r.host, r.port, r.server_name) for r in a.groups[0].routes] == [
            ("10.0.0.1", 2526, "mx1.example.com"),
            ("10.0.0.2", 2526, "mx2.example.com"),
        ]

    async def test_a_bad_domain_is_a_hard_bounce(self, policy):
        async def resolve(domain):
            raise BadDomain(f"{domain}: null MX")

        result = await ResolveRoute(policy, relay=None, resolve=resolve)(attempt(policy))
        assert isinstance(result, Bounced) and result.bounce_class == "hard:BadDomain"
        assert result.send_result == "BLOCKED_DOMAIN"

    async def test_a_dns_failure_is_a_deferral(self, policy):
        async def resolve(domain):
            raise DnsTemporaryError("SERVFAIL")

        assert isinstance(await ResolveRoute(policy, relay=None, resolve=resolve)(attempt(policy)), Deferred)


class TestCheckThrottle:
    async def test_admits_within_the_rate(self, policy):
        a = attempt(policy)
        await ResolveRoute(policy, relay=("h", 25), resolve=None)(a)
        assert await CheckThrottle(Shaper(), max_wait=1)(a) is None

    async def test_a_suspended_site_defers_with_retry_after(self, policy, tmp_path):
        shaper = Shaper(clock=lambda: 100.0)
        a = attempt(policy)
        await ResolveRoute(policy, relay=("h", 25), resolve=None)(a)
        shaper.site("127.0.0.2", a.groups[0].site).suspended_until = 160.0
        result = await CheckThrottle(shaper, max_wait=1)(a)
        assert isinstance(result, Deferred) and result.retry_after == 60.0

    async def test_a_wait_longer_than_max_wait_defers(self, policy):
        shaper = Shaper(clock=lambda: 100.0)
        a = attempt(policy)
        await ResolveRoute(policy, relay=("h", 25), resolve=None)(a)
        await shaper.react(a.source, a.groups[0].site, "421 slow down")  # throttled to 1/min
        assert await CheckThrottle(shaper, max_wait=5)(a) is None  # checks, takes nothing
        assert await shaper.admit(a.source, a.groups[0].site, max_wait=5) is None  # Deliver takes the permit
        result = await CheckThrottle(shaper, max_wait=5)(a)
        assert isinstance(result, Deferred) and result.retry_after == pytest.approx(60.0)


class TestDkimSign:
    async def test_signs_when_the_domain_has_a_verified_key(self):
        import dkim
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        )
        public = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

        async def keys(account_id, domain):
            return (b"sel", pem) if domain == "shop.example" else None

        a = attempt()
        assert await DkimSign(keys)(a) is None
        assert a.mime.startswith(b"DKIM-Signature:")
        import base64

        record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)
        assert dkim.verify(a.mime, dnsfunc=lambda name, timeout=5: record)

    async def test_leaves_the_message_alone_without_a_key(self):
        async def keys(account_id, domain):
            return None

        a = attempt()
        await DkimSign(keys)(a)
        assert a.mime == a.msg.mime

    @pytest.mark.parametrize("pem", [b"not a key", b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"])
    async def test_a_key_that_cannot_sign_drops_the_message_with_the_reason(self, pem):
        async def keys(account_id, domain):
            return (b"sel", pem)

        a = attempt()
        result = await DkimSign(keys)(a)
        assert isinstance(result, Dropped) and result.send_result == "UNCONFIGURED_SENDING_DOMAIN"
        assert "DKIM key of shop.example (selector sel) cannot sign" in result.reason
        assert a.mime == a.msg.mime  # never sent unsigned


class TestDeliver:
    async def prepared(self, policy, recipients=("jane@example.com",)):
        a = attempt(policy, recipients=recipients)
        await ResolveRoute(policy, relay=("127.0.0.1", 2525), resolve=None)(a)
        return a

    async def test_delivered(self, policy):
        a = await self.prepared(policy)
        transport = FakeTransport(Delivered(250, "OK", "relay"))
        assert await Deliver(transport, Shaper(), policy)(a) == Delivered(250, "OK", "relay")

    async def test_a_5xx_is_classified_by_the_bounce_table(self, policy):
        a = await self.prepared(policy)
        transport = FakeTransport(Bounced(550, "5.1.1 user unknown", "relay"))
        result = await Deliver(transport, Shaper(), policy)(a)
        assert result.bounce_class == "hard:InvalidRecipient" and result.send_result == "UNDELIVERABLE"

    async def test_a_matching_reply_throttles_the_site_on_that_ip(self, policy):
        shaper = Shaper()
        a = await self.prepared(policy)
        await Deliver(FakeTransport(Deferred(421, "4.7.0 slow down", "relay")), shaper, policy)(a)
        state = shaper.site("127.0.0.2", a.groups[0].site)
        assert state.override_rate is not None and state.override_rate.spec.limit == 1

    async def test_a_connection_failure_tries_the_next_mx(self, policy):
        async def resolve(domain):
            return (MxHost("mx1", ("10.0.0.1",)), MxHost("mx2", ("10.0.0.2",)))

        a = attempt(policy)
        await ResolveRoute(policy, relay=None, resolve=resolve)(a)
        transport = FakeTransport(Deferred(None, "connection refused", "mx1"), Delivered(250, "OK", "mx2"))
        assert await Deliver(transport, Shaper(), policy)(a) == Delivered(250, "OK", "mx2")
        assert [c[0].host for c in transport.calls] == ["10.0.0.1", "10.0.0.2"]

    async def test_a_4xx_reply_does_not_try_the_next_mx(self, policy):
        async def resolve(domain):
            return (MxHost("mx1", ("10.0.0.1",)), MxHost("mx2", ("10.0.0.2",)))

        a = attempt(policy)
        await ResolveRoute(policy, relay=None, resolve=resolve)(a)
        transport = FakeTransport(Deferred(451, "greylisted", "mx1"))
        assert isinstance(await Deliver(transport, Shaper(), policy)(a), Deferred) and len(transport.calls) == 1


class FakePublisher:
    def __init__(self):
        self.deliveries, self.retries, self.moved = [], [], []

    async def delivery(self, message_id, event):
        self.deliveries.append(decode(event))

    async def retry(self, tier, key, value):
        self.retries.append((tier, key, decode(value)))

    async def rendered(self, key, value):
        self.moved.append((key, decode(value)))


class TestFinish:
    def make(self, policy, now=None):
        records, publisher = FakeRecords(), FakePublisher()
        finish = Finish(
            records=records,
            publisher=publisher,
            schedule=RetrySchedule(base=10, max_age=100),
            policy=policy,
            now=now or (lambda: datetime.now(UTC)),
        )
        return finish, records, publisher

    async def test_delivered_is_recorded_then_published(self, policy):
        finish, records, publisher = self.make(policy)
        assert await finish(attempt(policy), Delivered(250, "OK", "relay")) == "delivered"
        (event,) = publisher.deliveries
        assert (event.outcome, event.send_result, event.remote_host) == (DeliveryOutcome.DELIVERED, "SENT", "relay")
        assert records.rows["m-1"][0] == "DELIVERED"

    async def test_deferred_goes_to_a_retry_tier_with_not_before_and_the_next_attempt(self, policy):
        finish, records, publisher = self.make(policy)
        a = attempt(policy)
        assert await finish(a, Deferred(421, "busy")) == "deferred"
        ((tier, key, again),) = publisher.retries
        assert (tier, key, again.attempt) == (0, b"127.0.0.2", 1)
        assert abs(again.first_attempt_at - a.started) < timedelta(milliseconds=1) and again.not_before > a.started
        (event,) = publisher.deliveries
        assert (event.outcome, event.send_result) == (DeliveryOutcome.DEFERRED, "QUEUED")
        assert "m-1" not in records.rows

    async def test_a_deferral_past_the_maximum_age_expires_as_a_soft_bounce(self, policy):
        finish, _, publisher = self.make(policy)
        old = datetime.now(UTC) - timedelta(seconds=95)
        assert await finish(attempt(policy, attempt=3, first_attempt_at=old), Deferred(421, "busy")) == "bounced"
        (event,) = publisher.deliveries
        assert (event.outcome, event.bounce_class) == (DeliveryOutcome.BOUNCED, "soft:MessageExpired")
        assert not publisher.retries

    async def test_rerouted_is_republished_under_the_new_ip(self, policy):
        finish, _, publisher = self.make(policy)
        assert await finish(attempt(policy), Rerouted("127.0.0.9", "cap")) == "rerouted"
        ((key, moved),) = publisher.moved
        assert key == b"127.0.0.9" and moved.sending_ip == "127.0.0.9" and not publisher.deliveries


class TestPipeline:
    async def test_steps_run_in_order_until_one_returns(self):
        calls = []

        def step(name, result=None):
            async def run(a):
                calls.append(name)
                return result

            return run

        p = Pipeline((step("a"), step("b", Delivered(250, "OK")), step("c")))
        _, result = await p.run(msg())
        assert calls == ["a", "b"] and result == Delivered(250, "OK")


def test_classifies_smtp_errors():
    assert isinstance(classify_smtp_error(aiosmtplib.SMTPResponseException(421, "try later")), Deferred)
    assert isinstance(classify_smtp_error(aiosmtplib.SMTPResponseException(552, "too big")), Bounced)
    assert isinstance(classify_smtp_error(aiosmtplib.SMTPServerDisconnected("gone")), Deferred)
    assert isinstance(classify_smtp_error(TimeoutError()), Deferred)
    refused = aiosmtplib.SMTPRecipientsRefused([aiosmtplib.SMTPRecipientRefused(550, "no such user", "x@y")])
    assert classify_smtp_error(refused) == Bounced(550, "no such user")


class TestRecordWhileHoldingTheConnection:
    async def test_a_delivery_is_recorded_before_the_connection_slot_is_released(self, policy):
        finish, records, publisher = TestFinish().make(policy)
        shaper = Shaper()
        a = attempt(policy)
        await ResolveRoute(policy, relay=("127.0.0.1", 2525), resolve=None)(a)
        gate = shaper.site("127.0.0.2", a.groups[0].site).gate
        held_while_recording = []

        async def on_delivered(at, outcome):
            held_while_recording.append(gate.held)
            await finish.record_delivered(at, outcome)

        deliver = Deliver(FakeTransport(Delivered(250, "OK", "relay")), shaper, policy, on_delivered=on_delivered)
        result = await deliver(a)
        assert held_while_recording == [1] and records.rows["m-1"][0] == "DELIVERED"
        assert await finish(a, result) == "delivered"
        (event,) = publisher.deliveries
        assert event.outcome is DeliveryOutcome.DELIVERED and records.rows["m-1"][1] == a.recorded_event

    async def test_a_delivery_is_recorded_once_the_database_is_back(self, policy, monkeypatch):
        import asyncpg

        finish, records, _ = TestFinish().make(policy)
        real_record, failures = (
            records.record,
            [asyncpg.CannotConnectNowError("shutting down"), ConnectionRefusedError()],
        )

        async def record(*args):
            if failures:
                raise failures.pop(0)
            await real_record(*args)

        monkeypatch.setattr(records, "record", record)
        no_wait = asyncio.sleep
        monkeypatch.setattr("mailstream.core.retry.asyncio.sleep", lambda seconds: no_wait(0))
        a = attempt(policy)
        await finish.record_delivered(a, Delivered(250, "OK", "relay"))
        assert records.rows["m-1"][0] == "DELIVERED" and a.recorded_event is not None


@pytest.mark.parametrize(
    "outcome",
    [
        Delivered(250, "ok", "mx.example"),
        Deferred(421, "busy", "mx.example", 60.0),
        Dropped("suppressed", "BLOCKED_ADDRESS"),
    ],
    ids=["delivered", "deferred", "dropped"],
)
def test_every_delivery_event_carries_the_messages_custom_args(outcome):
    from mailstream.sender.finish import delivery_event

    args = {"order": "1001", "shop": "eu"}
    assert delivery_event(attempt(custom_args=args), outcome).custom_args == args
    assert delivery_event(attempt(), outcome).custom_args == {}
