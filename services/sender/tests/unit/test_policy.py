"""Policy parsing and validation (no sockets)."""

import itertools
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from mailstream.sender.policy import Action, PolicyError, ThrottleSpec, Tls, load_policy, parse_duration

REPO = Path(__file__).resolve().parents[4]
POOLS = '[sources.a]\naddress = "127.0.0.2"\n[pools.shared.a]\nweight = 1\n'


def folder(tmp_path, pools=POOLS, shaping="", warmup="", bounces=""):
    for name, text in (("pools", pools), ("shaping", shaping), ("warmup", warmup), ("bounces", bounces)):
        (tmp_path / f"{name}.toml").write_text(text)
    return tmp_path


class TestThrottleSpec:
    def test_parses_rates_with_underscores_units_and_burst(self):
        assert ThrottleSpec.parse("1_000/hr") == ThrottleSpec(1000, 3600.0, 1)
        assert ThrottleSpec.parse("100/s").interval == 0.01
        assert ThrottleSpec.parse("10/min,max_burst=5") == ThrottleSpec(10, 60.0, 5)
        assert ThrottleSpec.parse("2/day").per_second == pytest.approx(2 / 86400)

    @pytest.mark.parametrize("text", ["0/s", "10/fortnight", "fast", "10", "-1/s", "10/s,max_burst=0"])
    def test_rejects(self, text):
        with pytest.raises(PolicyError):
            ThrottleSpec.parse(text)

    def test_durations(self):
        assert parse_duration("90m") == 5400 and parse_duration("2h") == 7200 and parse_duration(3) == 3
        with pytest.raises(PolicyError):
            parse_duration("soon")


class TestLoading:
    def test_the_shipped_policy_is_valid(self):
        policy = load_policy(REPO / "deploy/policy")
        assert "shared" in policy.pools
        google = policy.site("gmail.com")
        assert google.name == "google" and google.shaping.tls is Tls.REQUIRED
        assert google.shaping.max_message_rate == ThrottleSpec.parse("100/s")  # inherited from [default]
        assert policy.site("example.org", ("aspmx.l.google.com",)).name == "google"  # by MX suffix
        assert policy.site("example.org").name == "example.org"  # default: one site per domain

    def test_check_command_on_the_shipped_policy(self):
        done = subprocess.run(
            [sys.executable, "-m", "mailstream.sender.policy", "check", str(REPO / "deploy/policy")],
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr
        assert "policy ok" in done.stdout

    def test_check_command_fails_loudly_on_a_bad_policy(self, tmp_path):
        folder(tmp_path, shaping='[default]\nmax_message_rate = "0/s"\n')
        done = subprocess.run(
            [sys.executable, "-m", "mailstream.sender.policy", "check", str(tmp_path)], capture_output=True, text=True
        )
        assert done.returncode == 1 and "max_message_rate" in done.stderr and "positive" in done.stderr

    def test_unknown_keys_are_errors(self, tmp_path):
        with pytest.raises(PolicyError, match=r"unknown key.*max_rate"):
            load_policy(folder(tmp_path, shaping='[default]\nmax_rate = "1/s"\n'))
        with pytest.raises(PolicyError, match=r"unknown key.*adress"):
            load_policy(folder(tmp_path, pools='[sources.a]\naddress = "1.2.3.4"\nadress = "x"\n[pools.shared.a]\n'))

    def test_a_zero_limit_is_an_error(self, tmp_path):
        with pytest.raises(PolicyError, match="connection_limit"):
            load_policy(folder(tmp_path, shaping="[default]\nconnection_limit = 0\n"))

    def test_a_pool_naming_a_missing_source_is_an_error(self, tmp_path):
        with pytest.raises(PolicyError, match="missing source 'ghost'"):
            load_policy(folder(tmp_path, pools=POOLS + "[pools.vip.ghost]\nweight = 1\n"))

    def test_a_shared_pool_is_required(self, tmp_path):
        with pytest.raises(PolicyError, match="shared"):
            load_policy(folder(tmp_path, pools='[sources.a]\naddress = "127.0.0.2"\n[pools.x.a]\n'))

    def test_unknown_warmup_schedule_and_bad_regex_are_errors(self, tmp_path):
        pools = '[sources.a]\naddress = "127.0.0.2"\nwarmup = "nope"\nwarmup_started = 2026-11-01\n[pools.shared.a]\n'
        with pytest.raises(PolicyError, match="unknown warm-up schedule"):
            load_policy(folder(tmp_path, pools=pools))
        bad = '[[default.automation]]\nregex = "(("\naction = "suspend"\nduration = "1h"\n'
        with pytest.raises(PolicyError, match="bad regex"):
            load_policy(folder(tmp_path, shaping=bad))

    def test_sites_inherit_the_default_and_add_automation(self, tmp_path):
        shaping = """
[default]
max_message_rate = "50/s"
[[default.automation]]
regex = "busy"
action = "throttle"
max_message_rate = "1/s"
duration = "30s"
[domain."slow.example"]
connection_limit = 2
[[domain."slow.example".automation]]
regex = "go away"
action = "suspend"
duration = "1m"
"""
        policy = load_policy(folder(tmp_path, shaping=shaping))
        slow = policy.site("SLOW.example").shaping
        assert slow.connection_limit == 2 and slow.max_message_rate == ThrottleSpec.parse("50/s")
        assert [a.action for a in slow.automation] == [Action.THROTTLE, Action.SUSPEND]


class TestWarmup:
    def test_caps_by_age_and_warm_after_the_schedule(self, tmp_path):
        warmup = '[schedules.s]\nperiod = "hour"\ncaps = [20, 28, 39]\n'
        pools = (
            '[sources.a]\naddress = "127.0.0.2"\nwarmup = "s"\nwarmup_started = 2026-11-20\n'
            '[sources.b]\naddress = "127.0.0.3"\n[pools.shared.a]\n[pools.shared.b]\n'
        )
        policy = load_policy(folder(tmp_path, pools=pools, warmup=warmup))
        a = policy.sources["a"]
        assert a.warmup_cap(date(2026, 11, 20)) == 20
        assert a.warmup_cap(date(2026, 11, 22)) == 39
        assert a.warmup_cap(date(2026, 11, 23)) is None
        assert policy.sources["b"].warmup_cap(date(2026, 11, 20)) is None

    def test_warmup_started_may_be_left_out_then_day_0_is_the_first_use(self, tmp_path):
        warmup = "[schedules.s]\ncaps = [20, 28]\n"
        pools = '[sources.a]\naddress = "127.0.0.2"\nwarmup = "s"\n[pools.shared.a]\n'
        a = load_policy(folder(tmp_path, pools=pools, warmup=warmup)).sources["a"]
        assert a.warmup_started is None
        assert a.warmup_cap(date(2026, 11, 21), first_used_on=date(2026, 11, 20)) == 28
        assert a.warmup_cap(date(2026, 11, 21)) == 20  # never sent: day 0 is today

    def test_warmup_started_that_is_not_a_date_is_an_error(self, tmp_path):
        warmup = "[schedules.s]\ncaps = [20]\n"
        pools = '[sources.a]\naddress = "127.0.0.2"\nwarmup = "s"\nwarmup_started = "soon"\n[pools.shared.a]\n'
        with pytest.raises(PolicyError, match="warmup_started must be a date"):
            load_policy(folder(tmp_path, pools=pools, warmup=warmup))

    def test_shipped_sendgrid_curve_grows_about_1_4x_a_day(self):
        caps = load_policy(REPO / "deploy/policy").sources["local-1"].warmup
        assert caps is None  # the development IPs are warm
        from mailstream.sender.policy.load import _warmups

        curve = _warmups(REPO / "deploy/policy/warmup.toml")["sendgrid-hourly"].caps
        ratios = [b / a for a, b in itertools.pairwise(curve[:12])]
        assert all(1.3 <= r <= 1.5 for r in ratios)


class TestBounceClassification:
    @pytest.mark.parametrize(
        ("code", "reply", "label", "result"),
        [
            (550, "5.1.1 <x@y>: Recipient address rejected: User unknown", "hard:InvalidRecipient", "UNDELIVERABLE"),
            (550, "5.1.2 bad destination domain", "hard:BadDomain", "BLOCKED_DOMAIN"),
            (554, "5.7.1 Message rejected as spam", "hard:SpamBlock", "BLOCKED_ADDRESS"),
            (550, "5.7.26 DMARC policy violation", "hard:PolicyRelated", "UNDELIVERABLE"),
            (552, "5.2.2 Mailbox full, over quota", "soft:QuotaIssues", "UNDELIVERABLE"),
            (554, "something odd", "hard:Uncategorized", "UNDELIVERABLE"),
        ],
    )
    def test_the_shipped_table(self, code, reply, label, result):
        bounce = load_policy(REPO / "deploy/policy").classify_bounce(code, reply)
        assert (bounce.label, bounce.send_result) == (label, result)

    def test_expired_and_bad_domain_classes(self):
        policy = load_policy(REPO / "deploy/policy")
        assert policy.expired_bounce.label == "soft:MessageExpired"
        assert (policy.bad_domain_bounce.label, policy.bad_domain_bounce.send_result) == (
            "hard:BadDomain",
            "BLOCKED_DOMAIN",
        )
