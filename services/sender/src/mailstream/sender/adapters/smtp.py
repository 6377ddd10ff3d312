"""SMTP delivery with aiosmtplib: connections bound to the source IP, kept and reused per
(remote host, port, source IP, TLS mode) for up to `max_deliveries` transactions each.

TLS: "opportunistic" upgrades with STARTTLS when offered (certificates not verified, as MTAs
do for opportunistic TLS); "required" fails the connection (-> Deferred) when STARTTLS is not
offered; "disabled" never upgrades. Concurrency is bounded by the caller (connection gates
per IP and per (IP, site), see shaping.py); this class only pools connections.
"""

from __future__ import annotations

import ssl
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiosmtplib
import aiosmtplib.protocol
import aiosmtplib.smtp

from mailstream.sender.outcomes import Bounced, Deferred, Delivered, classify_smtp_error

_normalize_with_regex = aiosmtplib.protocol.normalize_message_line_endings


def _normalize_line_endings(message: bytes) -> bytes:
    """aiosmtplib's line-ending normalization, with a fast path: the renderer's MIME already
    uses CRLF only, and three counts in C are far cheaper than a regex substitution over every
    line of a 20 KB message (run twice per message: SIZE and DATA). Same result either way."""
    crlf = message.count(b"\r\n")
    if message.count(b"\n") == crlf and message.count(b"\r") == crlf:
        return message if message.endswith(b"\r\n") else message + b"\r\n"
    return _normalize_with_regex(message)


aiosmtplib.protocol.normalize_message_line_endings = _normalize_line_endings
aiosmtplib.smtp.normalize_message_line_endings = _normalize_line_endings


@dataclass(frozen=True, slots=True)
class Route:
    host: str  # address (or name) to connect to
    port: int
    source_ip: str
    tls: str = "opportunistic"
    server_name: str | None = None  # the MX name, for logs and events

    @property
    def key(self) -> tuple[str, int, str, str]:
        return (self.host, self.port, self.source_ip, self.tls)


_START_TLS = {"opportunistic": None, "required": True, "disabled": False}


class _Connection:
    __slots__ = ("smtp", "uses")

    def __init__(self, smtp: aiosmtplib.SMTP) -> None:
        self.smtp = smtp
        self.uses = 0


class SmtpTransport:
    def __init__(self, *, helo_name: str, timeout: float, max_idle_per_route: int = 64) -> None:
        self._helo = helo_name
        self._timeout = timeout
        self._idle: dict[tuple, list[_Connection]] = defaultdict(list)
        self._max_idle = max_idle_per_route
        self._tls = ssl.create_default_context()
        self._tls.check_hostname = False
        self._tls.verify_mode = ssl.CERT_NONE
        self.connections_opened = 0

    async def _connection(self, route: Route, before_connect: Callable[[], Awaitable[None]] | None) -> _Connection:
        idle = self._idle[route.key]
        while idle:
            conn = idle.pop()
            if conn.smtp.is_connected:
                return conn
        if before_connect is not None:
            await before_connect()
        smtp = aiosmtplib.SMTP(
            hostname=route.host,
            port=route.port,
            source_address=(route.source_ip, 0),
            local_hostname=self._helo,
            timeout=self._timeout,
            start_tls=_START_TLS[route.tls],
            tls_context=self._tls,
        )
        await smtp.connect()
        self.connections_opened += 1
        return _Connection(smtp)

    async def deliver(
        self,
        route: Route,
        mail_from: str,
        recipients: list[str],
        mime: bytes,
        *,
        max_deliveries: int = 100,
        before_connect: Callable[[], Awaitable[None]] | None = None,
        permit: Callable[[], Awaitable[float | None]] | None = None,
    ) -> Delivered | Deferred | Bounced:
        """`permit` is awaited on an open connection right before MAIL FROM (the rate limiter:
        connection set-up time then cannot bunch messages); a non-None answer defers."""
        conn = None
        remote = route.server_name or route.host
        try:
            conn = await self._connection(route, before_connect)
            if permit is not None and (retry_after := await permit()) is not None:
                self._idle[route.key].append(conn)
                return Deferred(None, "throttled", remote, retry_after)
            _, reply = await conn.smtp.sendmail(mail_from, recipients, mime)
        except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
            if conn is not None:
                await self._discard(conn, exc)
            return classify_smtp_error(exc, remote)
        conn.uses += 1
        if conn.uses < max_deliveries and len(self._idle[route.key]) < self._max_idle:
            self._idle[route.key].append(conn)
        else:
            await self._quit(conn)
        return Delivered(250, reply, remote)

    async def _discard(self, conn: _Connection, exc: Exception) -> None:
        # After a reply error the session is still usable in SMTP terms, but RSET state is
        # unknown to us after partial transactions; a fresh connection is the safe choice.
        if isinstance(exc, aiosmtplib.SMTPResponseException) and conn.smtp.is_connected:
            await self._quit(conn)
        else:
            conn.smtp.close()

    async def _quit(self, conn: _Connection) -> None:
        try:
            await conn.smtp.quit()
        except (TimeoutError, aiosmtplib.SMTPException, OSError):
            conn.smtp.close()

    async def close(self) -> None:
        for connections in self._idle.values():
            for conn in connections:
                if conn.smtp.is_connected:
                    await self._quit(conn)
        self._idle.clear()
