"""The receiving side of an SMTP session: an asyncio.Protocol that parses the server's replies as
bytes arrive (several per packet when pipelining) and hands them to smtp_client.SmtpClient in order.

Flow control: a session never has more than one message in flight, so pause_writing is not
waited for; the transport buffers at most that message, and the reply to it is awaited anyway.
"""

from __future__ import annotations

import asyncio
from collections import deque

from mailstream.sender.adapters.smtp_wire import Reply, ReplyParser, SmtpConnectionLost, SmtpProtocolError


class ReplyReader(asyncio.Protocol):
    """Collects the server's replies in order and wakes the client waiting for the next one."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._parser = ReplyParser()
        self._replies: deque[Reply] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self.transport: asyncio.BaseTransport | None = None
        self.ended: str | None = None  # why no more replies can come

    @property
    def unread(self) -> bool:
        """Bytes arrived that nobody asked for (an idle session's 421, or data injected before TLS)."""
        return bool(self._replies) or self._parser.pending

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.ended is not None:
            return
        try:
            replies = self._parser.feed(data)
        except SmtpProtocolError as exc:
            self._end(exc.message)
            if self.transport is not None:
                self.transport.close()
            return
        if replies:  # part of a reply (a multi-line one sent line by line) wakes nobody
            self._replies.extend(replies)
            self._wake()

    def eof_received(self) -> bool:
        self._end("the server closed the connection")
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self._end(f"connection lost: {exc}" if exc else "connection closed")

    def _end(self, reason: str) -> None:
        if self.ended is None:
            self.ended = reason
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    @property
    def ready(self) -> bool:
        """A reply can be taken, or it is known that none will come."""
        return bool(self._replies) or self.ended is not None

    async def wait(self) -> None:
        """Until `ready` (the caller bounds the wait with the command timeout)."""
        while not self.ready:
            self._waiter = self._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    def pop(self, what: str) -> Reply:
        if self._replies:
            return self._replies.popleft()  # replies sent before a close still count
        raise SmtpConnectionLost(f"{self.ended} (waiting for the reply to {what})")
