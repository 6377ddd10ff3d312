"""SMTP delivery: sessions of our own client (smtp_client.py) bound to the source IP, kept and
reused per (remote host, port, source IP, TLS mode) for up to `max_deliveries` transactions each.

TLS: "opportunistic" upgrades with STARTTLS when offered (certificates not verified, as MTAs
do for opportunistic TLS); "required" fails the connection (-> Deferred) when STARTTLS is not
offered; "disabled" never upgrades. Concurrency is bounded by the caller (connection gates
per IP and per (IP, site), see shaping.py); this class only pools connections.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from mailstream.sender.adapters.smtp_client import SmtpClient
from mailstream.sender.adapters.smtp_wire import SmtpError
from mailstream.sender.outcomes import Bounced, Deferred, Delivered, classify_smtp_error


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


class _Connection:
    __slots__ = ("client", "uses")

    def __init__(self, client: SmtpClient) -> None:
        self.client = client
        self.uses = 0


class SmtpTransport:
    def __init__(self, *, helo_name: str, timeout: float, max_idle_per_route: int = 64) -> None:
        self._helo = helo_name.encode("ascii")
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
            if conn.client.usable:
                return conn
            conn.client.close()  # closed by the server while idle, or it spoke out of turn (a 421)
        if before_connect is not None:
            await before_connect()
        client = await SmtpClient.connect(
            route.host,
            route.port,
            source_ip=route.source_ip,
            helo_name=self._helo,
            command_timeout=self._timeout,
            tls=route.tls,
            tls_context=self._tls,
            server_hostname=route.server_name,
        )
        self.connections_opened += 1
        return _Connection(client)

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
        connection set-up time then cannot bunch messages); a non-None answer defers.

        Delivered when the receiver accepted the message for at least one recipient (recipients it
        refused while accepting others are not reported, as with aiosmtplib before)."""
        conn = None
        remote = route.server_name or route.host
        try:
            conn = await self._connection(route, before_connect)
            if permit is not None and (retry_after := await permit()) is not None:
                self._idle[route.key].append(conn)
                return Deferred(None, "throttled", remote, retry_after)
            sent = await conn.client.send(mail_from, recipients, mime)
        except (SmtpError, OSError) as exc:  # OSError: TimeoutError included
            if conn is not None:
                await self._release(route, conn, max_deliveries)  # kept only if the session is still usable
            return classify_smtp_error(exc, remote)
        except BaseException:
            if conn is not None:
                conn.client.close()  # cancelled mid-transaction: the session's state is unknown
            raise
        await self._release(route, conn, max_deliveries)
        return Delivered(sent.reply.code, sent.reply.text, remote)

    async def _release(self, route: Route, conn: _Connection, max_deliveries: int) -> None:
        conn.uses += 1
        idle = self._idle[route.key]
        if conn.client.usable and conn.uses < max_deliveries and len(idle) < self._max_idle:
            idle.append(conn)
        else:
            await conn.client.quit()

    async def close(self) -> None:
        connections = [conn for connections in self._idle.values() for conn in connections]
        self._idle.clear()
        await asyncio.gather(*(conn.client.quit() for conn in connections))
