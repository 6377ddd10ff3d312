"""Sending domains as policy: the name rules, the DNS records a domain must publish, how a DNS
answer is judged, and how a domain's state moves. Pure: DNS answers come in as `Answer`s
(adapters/dns_lookup.py fetches them), the clock comes in as `now`.

    record      type   host                          value
    SPF         TXT    <domain>                      v=spf1 ip4:<each dedicated IP> ~all   (or include:<spf_include>)
    DKIM        TXT    <selector>._domainkey.<domain> v=DKIM1; k=rsa; p=<public key>
    RETURN_PATH CNAME  <return_path_label>.<domain>  <bounce_host>
    DMARC       TXT    _dmarc.<domain>               v=DMARC1; p=none; ...  (recommended, not required)
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import idna

from mailstream.gateway import spf


class DomainNameError(ValueError):
    """The name cannot be a sending domain; the message says why."""


class RecordKind(enum.StrEnum):
    SPF = "SPF"
    DKIM = "DKIM"
    RETURN_PATH = "RETURN_PATH"
    DMARC = "DMARC"


class RecordStatus(enum.StrEnum):
    VERIFIED = "VERIFIED"
    MISSING = "MISSING"
    WRONG_VALUE = "WRONG_VALUE"
    MULTIPLE = "MULTIPLE"
    IP_NOT_AUTHORIZED = "IP_NOT_AUTHORIZED"
    TOO_MANY_LOOKUPS = "TOO_MANY_LOOKUPS"
    UNKNOWN = "UNKNOWN"  # DNS did not answer: never a definitive failure
    UNCHECKED = "UNCHECKED"


class DomainState(enum.StrEnum):
    PENDING = "PENDING"  # not verified (never, or no longer after the grace period)
    VERIFIED = "VERIFIED"
    FAILING = "FAILING"  # verified, but its required records stopped verifying; still signs until the grace ends


Answer = spf.Answer
NO_RECORD = spf.NO_RECORD
NO_ANSWER = spf.NO_ANSWER


@dataclass(frozen=True, slots=True)
class RecordPolicy:
    """What the records point at (gateway settings) and which IPs SPF must authorize (pools.toml)."""

    dedicated_ips: tuple[str, ...]  # the account's dedicated pool; empty = no dedicated pool
    spf_include: str
    return_path_label: str
    bounce_host: str
    dmarc_report_to: str = ""


@dataclass(frozen=True, slots=True)
class ExpectedRecord:
    kind: RecordKind
    type: str  # TXT or CNAME
    host: str
    value: str
    required: bool


@dataclass(frozen=True, slots=True)
class RecordCheck:
    kind: RecordKind
    status: RecordStatus
    reason: str


def normalize_domain(name: str) -> str:
    """The domain in its ASCII (IDNA), lower-case form, or DomainNameError saying what is wrong."""
    text = name.strip()
    if not text:
        raise DomainNameError("the domain is empty")
    if text.endswith("."):
        raise DomainNameError(f"{name!r} ends with a dot: give the name without the trailing dot")
    if "@" in text or "/" in text or ":" in text or " " in text:
        raise DomainNameError(f"{name!r} is not a domain name (give only the part after the @, e.g. shop.example)")
    try:
        ascii_name = idna.encode(text, uts46=True).decode("ascii").lower()
    except idna.IDNAError as exc:
        raise DomainNameError(f"{name!r} is not a valid domain name: {exc}") from None
    if "." not in ascii_name:
        raise DomainNameError(f"{name!r} needs at least one dot (e.g. shop.example)")
    if len(ascii_name) > 253:
        raise DomainNameError(f"{name!r} is longer than 253 characters")
    return ascii_name


def dkim_host(selector: str, domain: str) -> str:
    return f"{selector}._domainkey.{domain}"


def dkim_value(public_key: str) -> str:
    return f"v=DKIM1; k=rsa; p={public_key}"


def spf_value(policy: RecordPolicy) -> str:
    if policy.dedicated_ips:
        return "v=spf1 " + " ".join(f"ip4:{ip}" for ip in policy.dedicated_ips) + " ~all"
    return f"v=spf1 include:{policy.spf_include} ~all"


def dmarc_value(policy: RecordPolicy) -> str:
    report = f" rua=mailto:{policy.dmarc_report_to};" if policy.dmarc_report_to else ""
    return f"v=DMARC1; p=none;{report} adkim=r; aspf=r"


def expected_records(domain: str, selector: str, public_key: str, policy: RecordPolicy) -> tuple[ExpectedRecord, ...]:
    return (
        ExpectedRecord(RecordKind.SPF, "TXT", domain, spf_value(policy), True),
        ExpectedRecord(RecordKind.DKIM, "TXT", dkim_host(selector, domain), dkim_value(public_key), True),
        ExpectedRecord(
            RecordKind.RETURN_PATH, "CNAME", f"{policy.return_path_label}.{domain}", policy.bounce_host, True
        ),
        ExpectedRecord(RecordKind.DMARC, "TXT", f"_dmarc.{domain}", dmarc_value(policy), False),
    )


def _did_not_answer(kind: RecordKind, host: str, rdtype: str) -> RecordCheck:
    return RecordCheck(
        kind, RecordStatus.UNKNOWN, f"UNKNOWN, DNS did not answer ({rdtype} {host}); checked again later"
    )


def _tags(record: str) -> dict[str, str]:
    tags = {}
    for part in record.split(";"):
        key, sep, value = part.partition("=")
        if sep:
            tags[key.strip().lower()] = "".join(value.split())
    return tags


def judge_dkim(expected: ExpectedRecord, answer: Answer) -> RecordCheck:
    kind, host = RecordKind.DKIM, expected.host
    if not answer.answered:
        return _did_not_answer(kind, host, "TXT")
    keys = [t for t in (_tags(r) for r in answer.records) if "p" in t]
    if not keys:
        return RecordCheck(kind, RecordStatus.MISSING, f"no DKIM record (TXT with p=) at {host}")
    if len(keys) > 1:
        return RecordCheck(kind, RecordStatus.MULTIPLE, f"{len(keys)} DKIM records at {host}; publish exactly one")
    ours = _tags(expected.value)["p"]
    found = keys[0]["p"]
    if not found:
        return RecordCheck(kind, RecordStatus.WRONG_VALUE, f"the DKIM record at {host} has an empty p= (key revoked)")
    if found != ours:
        return RecordCheck(
            kind,
            RecordStatus.WRONG_VALUE,
            f"the DKIM key (p=) at {host} is not this domain's key: publish the value shown",
        )
    return RecordCheck(kind, RecordStatus.VERIFIED, f"DKIM key at {host} matches")


def _name(value: str) -> str:
    return value.rstrip(".").lower()


def judge_return_path(expected: ExpectedRecord, answer: Answer) -> RecordCheck:
    kind, host, target = RecordKind.RETURN_PATH, expected.host, _name(expected.value)
    if not answer.answered:
        return _did_not_answer(kind, host, "CNAME")
    if not answer.records:
        return RecordCheck(kind, RecordStatus.MISSING, f"no CNAME at {host} (expected {target})")
    found = _name(answer.records[0])
    if found != target:
        return RecordCheck(kind, RecordStatus.WRONG_VALUE, f"{host} points at {found}, expected {target}")
    return RecordCheck(kind, RecordStatus.VERIFIED, f"{host} points at {target}")


def judge_dmarc(expected: ExpectedRecord, answer: Answer) -> RecordCheck:
    kind, host = RecordKind.DMARC, expected.host
    if not answer.answered:
        return _did_not_answer(kind, host, "TXT")
    found = [r for r in answer.records if r.replace(" ", "").upper().startswith("V=DMARC1")]
    if not found:
        return RecordCheck(kind, RecordStatus.MISSING, f"no DMARC record at {host} (recommended: {expected.value})")
    if len(found) > 1:
        return RecordCheck(kind, RecordStatus.MULTIPLE, f"{len(found)} DMARC records at {host}; receivers ignore all")
    return RecordCheck(kind, RecordStatus.VERIFIED, f"DMARC record at {host}: {found[0]}")


def judge_spf(expected: ExpectedRecord, policy: RecordPolicy, view: spf.DnsView) -> RecordCheck | spf.NeedLookup:
    """The SPF record's check, or the lookup the evaluation needs next (the caller fetches it into view)."""
    result = spf.evaluate(expected.host, view, ips=policy.dedicated_ips, include=policy.spf_include)
    if isinstance(result, spf.NeedLookup):
        return result
    return RecordCheck(RecordKind.SPF, RecordStatus(result.status), result.reason)


# --- the domain's verdict and state -----------------------------------------------------------------


class Verdict(enum.StrEnum):
    VERIFIED = "VERIFIED"  # every required record verifies
    FAILED = "FAILED"  # a required record definitively does not
    UNKNOWN = "UNKNOWN"  # no definitive failure, but DNS did not answer for some


def verdict(checks: Mapping[RecordKind, RecordCheck], records: tuple[ExpectedRecord, ...]) -> Verdict:
    statuses = [checks[r.kind].status for r in records if r.required]
    if all(s is RecordStatus.VERIFIED for s in statuses):
        return Verdict.VERIFIED
    if all(s in (RecordStatus.VERIFIED, RecordStatus.UNKNOWN, RecordStatus.UNCHECKED) for s in statuses):
        return Verdict.UNKNOWN
    return Verdict.FAILED


@dataclass(frozen=True, slots=True)
class DomainStatus:
    state: DomainState
    verified_at: datetime | None
    failing_since: datetime | None


def next_status(current: DomainStatus, outcome: Verdict, *, now: datetime, grace: timedelta) -> DomainStatus:
    """A verified domain whose records fail is FAILING (flagged, still signing) until `grace` has
    passed, then it loses verified_at. A DNS that did not answer changes nothing."""
    if outcome is Verdict.UNKNOWN:
        return current
    if outcome is Verdict.VERIFIED:
        return DomainStatus(DomainState.VERIFIED, current.verified_at or now, None)
    if current.verified_at is None:
        return DomainStatus(DomainState.PENDING, None, None)
    failing_since = current.failing_since or now
    if now - failing_since >= grace:
        return DomainStatus(DomainState.PENDING, None, None)
    return DomainStatus(DomainState.FAILING, current.verified_at, failing_since)
