"""The sending-domain policy: names, the records to publish, every judging reason, the state moves."""

from datetime import UTC, datetime, timedelta

import pytest

from mailstream.gateway import domains, spf
from mailstream.gateway.dkim_keys import new_dkim_key
from mailstream.gateway.domains import (
    NO_ANSWER,
    NO_RECORD,
    Answer,
    DomainState,
    DomainStatus,
    RecordCheck,
    RecordKind,
    RecordStatus,
    Verdict,
)

POLICY = domains.RecordPolicy(
    dedicated_ips=("127.0.0.2", "127.0.0.3"),
    spf_include="spf.mailstream.test",
    return_path_label="bounces",
    bounce_host="bounces.mailstream.test",
)
NO_POOL = domains.RecordPolicy((), "spf.mailstream.test", "bounces", "bounces.mailstream.test")
KEY = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"


def records(policy=POLICY):
    return {r.kind: r for r in domains.expected_records("shop.example", "ms1234", KEY, policy)}


class TestNames:
    @pytest.mark.parametrize(
        "given, expected",
        [
            ("Shop.Example", "shop.example"),
            (" mail.shop.example ", "mail.shop.example"),
            ("bücher.example", "xn--bcher-kva.example"),
        ],
    )
    def test_a_name_is_lower_cased_and_idna_encoded(self, given, expected):
        assert domains.normalize_domain(given) == expected

    @pytest.mark.parametrize(
        "given, says",
        [
            ("", "empty"),
            ("shop.example.", "trailing dot"),
            ("localhost", "at least one dot"),
            ("me@shop.example", "only the part after the @"),
            ("bad_name!.example", "not a valid domain name"),
            ("a" * 64 + ".example", "not a valid domain name"),
        ],
    )
    def test_a_bad_name_says_why(self, given, says):
        with pytest.raises(domains.DomainNameError, match=says):
            domains.normalize_domain(given)


class TestExpectedRecords:
    def test_spf_lists_each_dedicated_ip_and_the_rest_is_dkim_return_path_and_dmarc(self):
        found = records()
        assert (found[RecordKind.SPF].type, found[RecordKind.SPF].host) == ("TXT", "shop.example")
        assert found[RecordKind.SPF].value == "v=spf1 ip4:127.0.0.2 ip4:127.0.0.3 ~all"
        assert found[RecordKind.DKIM].host == "ms1234._domainkey.shop.example"
        assert found[RecordKind.DKIM].value == f"v=DKIM1; k=rsa; p={KEY}"
        assert (found[RecordKind.RETURN_PATH].type, found[RecordKind.RETURN_PATH].host) == (
            "CNAME",
            "bounces.shop.example",
        )
        assert found[RecordKind.RETURN_PATH].value == "bounces.mailstream.test"
        assert found[RecordKind.DMARC].host == "_dmarc.shop.example"
        assert found[RecordKind.DMARC].value.startswith("v=DMARC1; p=none;")
        assert [r.required for r in found.values()] == [True, True, True, False]

    def test_without_a_dedicated_pool_spf_includes_the_setting(self):
        assert records(NO_POOL)[RecordKind.SPF].value == "v=spf1 include:spf.mailstream.test ~all"

    def test_a_generated_key_is_rsa_2048_with_a_fresh_selector_and_a_hidden_private_key(self):
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        one, two = new_dkim_key(), new_dkim_key()
        assert one.selector != two.selector and one.selector.startswith("ms")
        assert load_pem_private_key(one.private_key.encode(), None).key_size == 2048
        assert one.private_key not in repr(one)


class TestDkim:
    def judge(self, *txt, answered=True):
        return domains.judge_dkim(records()[RecordKind.DKIM], Answer(txt, answered))

    def test_our_key_verifies_whatever_the_spacing(self):
        assert self.judge(f"v=DKIM1;k=rsa;  p={KEY[:10]} {KEY[10:]}").status is RecordStatus.VERIFIED

    @pytest.mark.parametrize(
        "txt, status, says",
        [
            ((), RecordStatus.MISSING, "no DKIM record"),
            (("v=spf1 -all",), RecordStatus.MISSING, "no DKIM record"),
            (("v=DKIM1; p=OTHER",), RecordStatus.WRONG_VALUE, "not this domain's key"),
            (("v=DKIM1; p=",), RecordStatus.WRONG_VALUE, "revoked"),
            ((f"p={KEY}", f"p={KEY}"), RecordStatus.MULTIPLE, "2 DKIM records"),
        ],
    )
    def test_each_failure_has_its_reason(self, txt, status, says):
        check = self.judge(*txt)
        assert check.status is status and says in check.reason

    def test_no_answer_is_unknown_not_a_failure(self):
        check = self.judge(answered=False)
        assert check.status is RecordStatus.UNKNOWN and "DNS did not answer" in check.reason


class TestReturnPathAndDmarc:
    def test_the_cname_must_point_at_the_bounce_host(self):
        expected = records()[RecordKind.RETURN_PATH]
        assert (
            domains.judge_return_path(expected, Answer(("Bounces.Mailstream.Test.",))).status is RecordStatus.VERIFIED
        )
        wrong = domains.judge_return_path(expected, Answer(("elsewhere.example",)))
        assert wrong.status is RecordStatus.WRONG_VALUE
        assert wrong.reason == "bounces.shop.example points at elsewhere.example, expected bounces.mailstream.test"
        assert domains.judge_return_path(expected, NO_RECORD).status is RecordStatus.MISSING
        assert domains.judge_return_path(expected, NO_ANSWER).status is RecordStatus.UNKNOWN

    def test_dmarc_is_judged_but_only_recommended(self):
        expected = records()[RecordKind.DMARC]
        assert domains.judge_dmarc(expected, Answer(("v=DMARC1; p=reject",))).status is RecordStatus.VERIFIED
        missing = domains.judge_dmarc(expected, NO_RECORD)
        assert missing.status is RecordStatus.MISSING and "recommended" in missing.reason
        both = domains.judge_dmarc(expected, Answer(("v=DMARC1; p=none", "v=DMARC1; p=reject")))
        assert both.status is RecordStatus.MULTIPLE
        assert domains.judge_dmarc(expected, NO_ANSWER).status is RecordStatus.UNKNOWN


def judge_spf(dns: dict[tuple[str, str], tuple[str, ...] | None], policy=POLICY) -> RecordCheck:
    """Runs the SPF judge the way the service does, answering its lookups from `dns` (None: no answer)."""
    view = spf.DnsView()
    for _ in range(100):
        outcome = domains.judge_spf(records(policy)[RecordKind.SPF], policy, view)
        if isinstance(outcome, RecordCheck):
            return outcome
        found = dns.get((outcome.rdtype, outcome.name), ())
        view.add(outcome, NO_ANSWER if found is None else Answer(found))
    raise AssertionError("the SPF judge kept asking")


class TestSpf:
    def test_the_record_we_show_verifies(self):
        check = judge_spf({("TXT", "shop.example"): ("v=spf1 ip4:127.0.0.2 ip4:127.0.0.3 ~all",)})
        assert check.status is RecordStatus.VERIFIED

    def test_includes_redirects_a_and_mx_are_followed(self):
        check = judge_spf(
            {
                ("TXT", "shop.example"): ("google-site-verification=x", "v=spf1 include:_spf.shop.example -all"),
                ("TXT", "_spf.shop.example"): ("v=spf1 a:out.shop.example redirect=_mx.shop.example",),
                ("A", "out.shop.example"): ("127.0.0.2",),
                ("TXT", "_mx.shop.example"): ("v=spf1 mx/24 -all",),
                ("MX", "_mx.shop.example"): ("mx.shop.example",),
                ("A", "mx.shop.example"): ("127.0.0.9",),
            }
        )
        assert check.status is RecordStatus.VERIFIED, check.reason
        assert "4 DNS lookups" in check.reason

    def test_an_ip_the_record_does_not_authorize_is_named(self):
        check = judge_spf({("TXT", "shop.example"): ("v=spf1 ip4:127.0.0.2 -all",)})
        assert (check.status, check.reason) == (RecordStatus.IP_NOT_AUTHORIZED, "SPF does not authorize 127.0.0.3")

    def test_a_fail_before_the_ip_wins(self):
        check = judge_spf({("TXT", "shop.example"): ("v=spf1 -ip4:127.0.0.3 ip4:127.0.0.0/24 ~all",)})
        assert check.reason == "SPF does not authorize 127.0.0.3"

    def test_an_include_without_spf_authorizes_nothing(self):
        check = judge_spf({("TXT", "shop.example"): ("v=spf1 include:nothing.example ~all",)})
        assert check.reason == "SPF does not authorize 127.0.0.2, 127.0.0.3"

    def test_more_than_ten_lookups_is_refused_with_the_count(self):
        includes = " ".join(f"include:i{n}.example" for n in range(12))
        dns = {("TXT", "shop.example"): (f"v=spf1 {includes} ip4:127.0.0.0/24 ~all",)}
        dns |= {("TXT", f"i{n}.example"): ("v=spf1 -all",) for n in range(12)}
        check = judge_spf(dns)
        assert (check.status, check.reason) == (RecordStatus.TOO_MANY_LOOKUPS, "SPF needs 12 DNS lookups, more than 10")

    def test_an_include_loop_is_too_many_lookups(self):
        check = judge_spf(
            {
                ("TXT", "shop.example"): ("v=spf1 include:a.example ~all",),
                ("TXT", "a.example"): ("v=spf1 include:shop.example ~all",),
            }
        )
        assert check.status is RecordStatus.TOO_MANY_LOOKUPS and "more than 20" in check.reason

    def test_none_or_two_records(self):
        assert judge_spf({}).status is RecordStatus.MISSING
        assert judge_spf({}).reason == "no SPF record (TXT v=spf1) at shop.example"
        two = judge_spf({("TXT", "shop.example"): ("v=spf1 -all", "v=spf1 ~all")})
        assert two.status is RecordStatus.MULTIPLE and "exactly one" in two.reason

    def test_no_answer_anywhere_is_unknown(self):
        assert judge_spf({("TXT", "shop.example"): None}).status is RecordStatus.UNKNOWN
        deep = judge_spf(
            {("TXT", "shop.example"): ("v=spf1 include:slow.example ~all",), ("TXT", "slow.example"): None}
        )
        assert deep.status is RecordStatus.UNKNOWN and "TXT slow.example" in deep.reason

    def test_without_a_pool_the_include_must_be_there(self):
        ok = judge_spf({("TXT", "shop.example"): ("v=spf1 include:spf.mailstream.test ~all",)}, NO_POOL)
        assert ok.status is RecordStatus.VERIFIED
        missing = judge_spf({("TXT", "shop.example"): ("v=spf1 ip4:1.2.3.4 ~all",)}, NO_POOL)
        assert (missing.status, missing.reason) == (
            RecordStatus.WRONG_VALUE,
            "SPF does not include:spf.mailstream.test",
        )


def checks(**statuses: RecordStatus) -> dict[RecordKind, RecordCheck]:
    found = {kind: RecordCheck(kind, RecordStatus.VERIFIED, "") for kind in RecordKind}
    for name, status in statuses.items():
        found[RecordKind(name)] = RecordCheck(RecordKind(name), status, "")
    return found


class TestVerdictAndState:
    RECORDS = tuple(records().values())
    NOW = datetime(2026, 12, 1, tzinfo=UTC)
    GRACE = timedelta(hours=72)

    def test_dmarc_does_not_block_and_unknown_is_not_a_failure(self):
        assert domains.verdict(checks(DMARC=RecordStatus.MISSING), self.RECORDS) is Verdict.VERIFIED
        assert domains.verdict(checks(SPF=RecordStatus.UNKNOWN), self.RECORDS) is Verdict.UNKNOWN
        failed = checks(SPF=RecordStatus.UNKNOWN, DKIM=RecordStatus.MISSING)
        assert domains.verdict(failed, self.RECORDS) is Verdict.FAILED

    def test_a_pending_domain_verifies_then_fails_then_loses_verification_after_the_grace(self):
        pending = DomainStatus(DomainState.PENDING, None, None)
        assert domains.next_status(pending, Verdict.FAILED, now=self.NOW, grace=self.GRACE) == pending
        verified = domains.next_status(pending, Verdict.VERIFIED, now=self.NOW, grace=self.GRACE)
        assert verified == DomainStatus(DomainState.VERIFIED, self.NOW, None)
        later = self.NOW + timedelta(hours=6)
        failing = domains.next_status(verified, Verdict.FAILED, now=later, grace=self.GRACE)
        assert failing == DomainStatus(DomainState.FAILING, self.NOW, later)
        still = domains.next_status(failing, Verdict.FAILED, now=later + timedelta(hours=71), grace=self.GRACE)
        assert still == failing
        lapsed = domains.next_status(failing, Verdict.FAILED, now=later + self.GRACE, grace=self.GRACE)
        assert lapsed == DomainStatus(DomainState.PENDING, None, None)

    def test_a_failing_domain_that_verifies_again_is_cleared_and_a_timeout_changes_nothing(self):
        failing = DomainStatus(DomainState.FAILING, self.NOW, self.NOW + timedelta(hours=1))
        later = self.NOW + timedelta(hours=2)
        assert domains.next_status(failing, Verdict.UNKNOWN, now=later, grace=self.GRACE) == failing
        cleared = domains.next_status(failing, Verdict.VERIFIED, now=later, grace=self.GRACE)
        assert cleared == DomainStatus(DomainState.VERIFIED, self.NOW, None)


def test_the_nameserver_setting_is_host_and_optional_port():
    from mailstream.gateway.adapters.dns_lookup import parse_nameservers

    assert parse_nameservers("127.0.0.1:5353, 10.0.0.1") == [("127.0.0.1", 5353), ("10.0.0.1", 53)]
    assert parse_nameservers("") == []
