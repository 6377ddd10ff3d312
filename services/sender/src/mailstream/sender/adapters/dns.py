"""Direct-to-MX routing with dnspython: MX records in preference order, A/AAAA fallback
(RFC 5321 §5.1), null MX (RFC 7505) and NXDOMAIN as bad domains, lookups cached by TTL."""

from __future__ import annotations

from dataclasses import dataclass

import dns.asyncresolver
import dns.exception
import dns.rdatatype
import dns.resolver


@dataclass(frozen=True, slots=True)
class MxHost:
    name: str
    addresses: tuple[str, ...]


class BadDomain(Exception):
    """The domain cannot receive mail (NXDOMAIN, null MX, or no address at all): a hard bounce."""


class DnsTemporaryError(Exception):
    """SERVFAIL, timeout: deferred."""


class MxResolver:
    def __init__(self, *, server: str = "", timeout: float = 5.0) -> None:
        self._resolver = dns.asyncresolver.Resolver(configure=not server)
        if server:
            host, _, port = server.rpartition(":")
            self._resolver.nameservers = [host or server]
            self._resolver.port = int(port) if host else 53
        self._resolver.lifetime = timeout
        self._resolver.cache = dns.resolver.Cache()

    async def _query(self, name: str, rdtype: str) -> list:
        try:
            answer = await self._resolver.resolve(name, rdtype)
        except dns.resolver.NXDOMAIN as exc:
            raise BadDomain(f"{name}: domain does not exist (NXDOMAIN)") from exc
        except dns.resolver.NoAnswer:
            return []
        except (dns.exception.Timeout, dns.resolver.NoNameservers) as exc:
            raise DnsTemporaryError(f"{name} {rdtype}: {exc}") from exc
        return list(answer)

    async def _addresses(self, name: str) -> tuple[str, ...]:
        found: list[str] = []
        for rdtype in ("A", "AAAA"):
            try:
                found += [r.address for r in await self._query(name, rdtype)]
            except BadDomain:
                continue
        return tuple(found)

    async def mx_hosts(self, domain: str) -> tuple[MxHost, ...]:
        """The hosts to try, best first. Raises BadDomain or DnsTemporaryError."""
        records = await self._query(domain, "MX")
        if any(str(r.exchange) == "." for r in records):
            raise BadDomain(f"{domain}: null MX, the domain does not accept mail")
        if not records:
            addresses = await self._addresses(domain)
            if not addresses:
                raise BadDomain(f"{domain}: no MX and no A/AAAA record")
            return (MxHost(domain, addresses),)
        hosts = []
        for record in sorted(records, key=lambda r: r.preference):
            name = str(record.exchange).rstrip(".")
            addresses = await self._addresses(name)
            if addresses:
                hosts.append(MxHost(name, addresses))
        if not hosts:
            raise DnsTemporaryError(f"{domain}: no MX host has an address")
        return tuple(hosts)
