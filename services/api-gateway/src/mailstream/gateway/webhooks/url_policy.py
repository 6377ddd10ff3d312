"""Which URLs a webhook may target (pure but for the resolver at the end).

Only http and https, with a host and without credentials in the URL. Unless it lies in a network
the operator allows (MAILSTREAM_WEBHOOK_ALLOWED_NETWORKS, none by default; the local stack allows
loopback for the tests' receivers), every address the host stands for must be a global unicast one:
private (10/8, 172.16/12, 192.168/16, fc00::/7), loopback (127/8, ::1), link-local (169.254/16,
fe80::/10), shared (100.64/10), multicast, unspecified, reserved and documentation ranges are
refused, IPv4 inside IPv6 (::ffff:a.b.c.d, 6to4, NAT64's 64:ff9b::/96) judged by its IPv4 address.
The check is made when an endpoint is saved and again by the dispatcher's resolver on every
connection, so a name that later resolves to a private address (DNS rebinding) is refused too.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

MAX_URL_LENGTH = 2048
SCHEMES = ("http", "https")
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Networks = tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
LOCALHOST = (ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1"))


def parse_networks(texts: tuple[str, ...] | list[str]) -> Networks:
    """The operator's allowed networks ("127.0.0.0/8", "::1/128", "10.1.2.3"), or ValueError naming one."""
    networks = []
    for text in texts:
        try:
            networks.append(ipaddress.ip_network(text.strip(), strict=False))
        except ValueError:
            raise ValueError(
                f"webhook allowed network {text!r}: an address or CIDR network, e.g. 127.0.0.0/8"
            ) from None
    return tuple(networks)


def _in(ip: IPAddress, allowed: Networks) -> bool:
    return any(ip.version == net.version and ip in net for net in allowed)


class TargetRefused(ValueError):
    """The URL or an address it resolves to is not a permitted webhook target; says why."""


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def address_refusal(ip: IPAddress, allowed: Networks = ()) -> str | None:
    """Why a webhook may not connect to `ip`, or None (a global address, or in an allowed network)."""
    if _in(ip, allowed):
        return None
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_ipv4(ip)
        if inner is not None:
            return address_refusal(inner, allowed)
    for flag, name in (
        ("is_loopback", "loopback"),
        ("is_link_local", "link-local"),
        ("is_multicast", "multicast"),
        ("is_unspecified", "unspecified"),
    ):
        if getattr(ip, flag):
            return f"{ip} is a {name} address"
    if not ip.is_global:
        return f"{ip} is a private or reserved address"
    return None


def parse_target(url: str) -> tuple[str, str]:
    """(scheme, host) of a webhook URL whose form is allowed, or TargetRefused."""
    if len(url) > MAX_URL_LENGTH:
        raise TargetRefused(f"a URL of at most {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (a malformed port raises)
    except ValueError as exc:
        raise TargetRefused(f"not a valid URL: {exc}") from None
    if parts.scheme not in SCHEMES:
        raise TargetRefused("only http:// and https:// URLs")
    if not parts.hostname:
        raise TargetRefused("the URL needs a host")
    if parts.username is not None or parts.password is not None:
        raise TargetRefused("no user name or password in the URL")
    if any(c in url for c in " \t\r\n"):
        raise TargetRefused("no white space in the URL")
    return parts.scheme, parts.hostname


def check_url(url: str, *, allowed: Networks = ()) -> None:
    """The URL's form and, for an IP-literal host or localhost, its address (names are resolved
    and checked by check_addresses at each connection)."""
    _, host = parse_target(url)
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        if (host == "localhost" or host.endswith(".localhost")) and not all(_in(a, allowed) for a in LOCALHOST):
            raise TargetRefused("localhost is a loopback address") from None
        return
    reason = address_refusal(ip, allowed)
    if reason:
        raise TargetRefused(reason)


def check_addresses(host: str, addresses: list[str], *, allowed: Networks = ()) -> None:
    for address in addresses:
        reason = address_refusal(ipaddress.ip_address(address.split("%", 1)[0]), allowed)
        if reason:
            raise TargetRefused(f"{host} resolves to {reason.split(' is ', 1)[0]}: {reason.split(' is ', 1)[1]}")


class PolicyResolver(AbstractResolver):
    """aiohttp's resolver that refuses a host any of whose addresses is not a permitted target."""

    def __init__(self, *, allowed: Networks = (), inner: AbstractResolver | None = None) -> None:
        self.allowed = allowed
        self.inner = inner or ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self.inner.resolve(host, port, family)
        check_addresses(host, [r["host"] for r in results], allowed=self.allowed)
        return results

    async def close(self) -> None:
        await self.inner.close()
