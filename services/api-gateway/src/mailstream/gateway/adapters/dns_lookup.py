"""DNS lookups for domain verification (dnspython's async resolver), as `spf.Answer`s: NXDOMAIN
and no data are empty answers; a timeout, SERVFAIL or refusal is `answered=False` ("DNS did not
answer"), never a missing record."""

from __future__ import annotations

import dns.asyncresolver
import dns.exception
import dns.nameserver
import dns.resolver

from mailstream.gateway.spf import NO_ANSWER, NO_RECORD, Answer


def parse_nameservers(servers: str) -> list[tuple[str, int]]:
    """ "host:port,host" -> [(host, port)], port 53 when absent."""
    found = []
    for item in servers.split(","):
        item = item.strip()
        if item:
            host, sep, port = item.rpartition(":")
            found.append((host, int(port)) if sep and host else (item, 53))
    return found


class DnsLookup:
    def __init__(self, *, nameservers: str = "", timeout: float = 5.0) -> None:
        servers = parse_nameservers(nameservers)
        self._resolver = dns.asyncresolver.Resolver(configure=not servers)
        if servers:
            self._resolver.nameservers = [dns.nameserver.Do53Nameserver(host, port=port) for host, port in servers]
        self._resolver.lifetime = timeout

    async def lookup(self, rdtype: str, name: str) -> Answer:
        try:
            answer = await self._resolver.resolve(name, rdtype, search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return NO_RECORD
        except (dns.exception.DNSException, OSError):  # timeout, SERVFAIL/REFUSED (NoNameservers), unreachable
            return NO_ANSWER
        return Answer(tuple(_text(rdtype, r) for r in answer))


def _text(rdtype: str, rdata) -> str:
    if rdtype == "TXT":
        return b"".join(rdata.strings).decode("utf-8", "replace")
    if rdtype == "A":
        return rdata.address
    if rdtype == "MX":
        return rdata.exchange.to_text().rstrip(".")
    return rdata.target.to_text().rstrip(".")  # CNAME
