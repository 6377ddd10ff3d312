"""SPF (RFC 7208) judged without I/O: does a domain's record authorize given IPs, and how many
DNS lookups does it need (§4.6.4: more than 10 is a permerror receivers treat as a fail).

The evaluation reads DNS through a `DnsView`; when it needs an answer the view does not hold it
returns `NeedLookup(rdtype, name)`, the caller fetches it, adds it and evaluates again. The
records are small, so walking again is cheaper than a resumable evaluator. Macros (%{...}),
ptr and exists never match here: we check the mechanisms we ask customers to publish.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

MAX_LOOKUPS = 10
COUNT_CAP = 20  # past this many lookups we stop following includes: the answer is "too many" anyway
MAX_DEPTH = 10
QUALIFIERS = {"+": "pass", "-": "fail", "~": "softfail", "?": "neutral"}
LOOKUP_TERMS = frozenset({"include", "redirect", "a", "mx", "ptr", "exists"})


@dataclass(frozen=True, slots=True)
class Answer:
    """A DNS answer: its records (TXT strings joined, CNAME/MX target names, A addresses), or
    answered=False when DNS did not answer (timeout, SERVFAIL). NXDOMAIN is an empty answer."""

    records: tuple[str, ...] = ()
    answered: bool = True


NO_RECORD = Answer(())
NO_ANSWER = Answer((), answered=False)


@dataclass(frozen=True, slots=True)
class NeedLookup:
    rdtype: str  # TXT, A or MX
    name: str


@dataclass
class DnsView:
    answers: dict[tuple[str, str], Answer] = field(default_factory=dict)

    def add(self, lookup: NeedLookup, answer: Answer) -> None:
        self.answers[(lookup.rdtype, lookup.name.lower())] = answer

    def get(self, rdtype: str, name: str) -> Answer:
        found = self.answers.get((rdtype, name.lower()))
        if found is None:
            raise _Missing(NeedLookup(rdtype, name.lower()))
        if not found.answered:
            raise _Unanswered(f"{rdtype} {name.lower()}")
        return found


@dataclass(frozen=True, slots=True)
class SpfResult:
    status: str  # a domains.RecordStatus value
    reason: str


class _Missing(Exception):
    def __init__(self, lookup: NeedLookup) -> None:
        self.lookup = lookup


class _Unanswered(Exception):
    pass


def spf_records(txt: tuple[str, ...]) -> list[str]:
    return [r for r in txt if r.lower() == "v=spf1" or r.lower().startswith("v=spf1 ")]


def terms(record: str) -> list[tuple[str, str, str]]:
    """(qualifier, mechanism or modifier, argument) of each term after v=spf1."""
    found = []
    for term in record.split()[1:]:
        if "=" in term and ":" not in term.split("=", 1)[0]:
            name, _, arg = term.partition("=")
            found.append(("", name.lower(), arg))
            continue
        qualifier = term[0] if term[0] in QUALIFIERS else "+"
        body = term[1:] if term[0] in QUALIFIERS else term
        name, _, arg = body.partition(":")
        if "/" in name:  # a/24, mx/24: the cidr belongs to the argument
            name, _, cidr = name.partition("/")
            arg = f"{arg}/{cidr}"
        found.append((qualifier, name.lower(), arg))
    return found


def evaluate(domain: str, view: DnsView, *, ips: tuple[str, ...], include: str) -> SpfResult | NeedLookup:
    """Whether domain's SPF authorizes every IP in `ips` (or, with no IPs, includes `include`)."""
    try:
        return _evaluate(domain, view, ips, include)
    except _Missing as missing:
        return missing.lookup
    except _Unanswered as exc:
        return SpfResult("UNKNOWN", f"UNKNOWN, DNS did not answer ({exc}); checked again later")


def _evaluate(domain: str, view: DnsView, ips: tuple[str, ...], include: str) -> SpfResult:
    records = spf_records(view.get("TXT", domain).records)
    if not records:
        return SpfResult("MISSING", f"no SPF record (TXT v=spf1) at {domain}")
    if len(records) > 1:
        return SpfResult("MULTIPLE", f"{len(records)} SPF records at {domain}; exactly one v=spf1 record is allowed")
    lookups = count_lookups(domain, view)
    if lookups > COUNT_CAP:
        return SpfResult("TOO_MANY_LOOKUPS", f"SPF needs more than {COUNT_CAP} DNS lookups, more than {MAX_LOOKUPS}")
    if lookups > MAX_LOOKUPS:
        return SpfResult("TOO_MANY_LOOKUPS", f"SPF needs {lookups} DNS lookups, more than {MAX_LOOKUPS}")
    if not ips:
        if not _includes(domain, include, view, ()):
            return SpfResult("WRONG_VALUE", f"SPF does not include:{include}")
        return SpfResult("VERIFIED", f"SPF includes {include}")
    refused = [ip for ip in ips if check_host(domain, ip, view) != "pass"]
    if refused:
        return SpfResult("IP_NOT_AUTHORIZED", f"SPF does not authorize {', '.join(refused)}")
    return SpfResult("VERIFIED", f"SPF authorizes {', '.join(ips)} ({lookups} DNS lookups)")


def _record(name: str, view: DnsView) -> str | None:
    """The one SPF record of name, or None (none, or several: a permerror)."""
    records = spf_records(view.get("TXT", name).records)
    return records[0] if len(records) == 1 else None


def count_lookups(name: str, view: DnsView, seen: tuple[str, ...] = (), so_far: int = 0) -> int:
    """The DNS lookups evaluating name's record may need; loops count as too many."""
    record = _record(name, view)
    if record is None:
        return so_far
    total = so_far
    for _, term, arg in terms(record):
        if term not in LOOKUP_TERMS:
            continue
        total += 1
        if total > COUNT_CAP:
            return total
        if term in ("include", "redirect") and "%" not in arg:
            target = arg.lower()
            if target in seen or target == name.lower():
                return COUNT_CAP + 1
            total = count_lookups(target, view, (*seen, name.lower()), total)
    return total


def _includes(name: str, include: str, view: DnsView, seen: tuple[str, ...]) -> bool:
    record = _record(name, view)
    if record is None or len(seen) > MAX_DEPTH:
        return False
    for _, term, arg in terms(record):
        if term in ("include", "redirect") and arg.lower() == include.lower():
            return True
        if term in ("include", "redirect") and "%" not in arg and arg.lower() not in seen:
            if _includes(arg, include, view, (*seen, name.lower())):
                return True
    return False


def check_host(name: str, ip: str, view: DnsView, depth: int = 0) -> str:
    """RFC 7208 check_host() for the mechanisms above: pass, fail, softfail, neutral, none or permerror."""
    if depth > MAX_DEPTH:
        return "permerror"
    records = spf_records(view.get("TXT", name).records)
    if len(records) != 1:
        return "none" if not records else "permerror"
    redirect = None
    for qualifier, term, arg in terms(records[0]):
        if term == "redirect":
            redirect = arg
        elif qualifier and _matches(term, arg, name, ip, view, depth):
            return QUALIFIERS[qualifier]
    if redirect and "%" not in redirect:
        result = check_host(redirect, ip, view, depth + 1)
        return "permerror" if result == "none" else result
    return "neutral"


def _in_network(ip: str, network: str) -> bool:
    try:
        return ipaddress.ip_address(ip) in ipaddress.ip_network(network, strict=False)
    except ValueError:
        return False


def _with_cidr(address: str, arg: str) -> str:
    cidr = arg.partition("/")[2].split("//")[0]
    return f"{address}/{cidr}" if cidr else address


def _matches(term: str, arg: str, name: str, ip: str, view: DnsView, depth: int) -> bool:
    if "%" in arg:
        return False
    target = (arg.partition("/")[0] or name).lower()
    if term == "all":
        return True
    if term in ("ip4", "ip6"):
        return _in_network(ip, arg)
    if term == "include":
        return check_host(target, ip, view, depth + 1) == "pass"
    if term == "a":
        return any(_in_network(ip, _with_cidr(a, arg)) for a in view.get("A", target).records)
    if term == "mx":
        hosts = view.get("MX", target).records
        return any(_in_network(ip, _with_cidr(a, arg)) for host in hosts for a in view.get("A", host).records)
    return False  # ptr, exists, unknown
