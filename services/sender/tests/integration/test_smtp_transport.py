"""The aiosmtplib adapter against a real aiosmtpd server on loopback."""

import asyncio

import pytest
from aiosmtpd.smtp import SMTP

from mailstream.sender.adapters.smtp import SmtpTransport
from mailstream.sender.outcomes import Bounced, Deferred, Delivered

pytestmark = pytest.mark.integration


class Receiver:
    def __init__(self, rcpt_reply="250 OK"):
        self.rcpt_reply = rcpt_reply
        self.received = []
        self.connections = 0

    async def handle_RCPT(self, server, session, envelope, address, options):
        if self.rcpt_reply.startswith("250"):
            envelope.rcpt_tos.append(address)
        return self.rcpt_reply

    async def handle_DATA(self, server, session, envelope):
        self.received.append((session.peer[0], envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 accepted"


@pytest.fixture
async def smtp_server():
    servers = []

    async def start(handler):
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: SMTP(handler, hostname="test"), "127.0.0.1", 0)
        servers.append(server)
        handler.port = server.sockets[0].getsockname()[1]
        return handler

    yield start
    for server in servers:
        server.close()


async def test_delivers_from_the_source_address_and_reuses_the_connection(smtp_server):
    receiver = await smtp_server(Receiver())
    transport = SmtpTransport(helo_name="test.local", timeout=5)
    route = ("127.0.0.1", receiver.port, "127.0.0.3")
    for n in range(3):
        mime = f"Subject: {n}\r\n\r\nx\r\n".encode()
        outcome = await transport.deliver(route, "a@shop.example", ["b@example.com"], mime)
        assert isinstance(outcome, Delivered)
    await transport.close()
    assert [r[0] for r in receiver.received] == ["127.0.0.3"] * 3
    assert receiver.received[0][1:3] == ("a@shop.example", ["b@example.com"])


async def test_a_5xx_reply_is_a_bounce_and_a_4xx_a_deferral(smtp_server):
    rejecting = await smtp_server(Receiver("550 5.1.1 no such user"))
    busy = await smtp_server(Receiver("421 4.7.0 try again later"))
    transport = SmtpTransport(helo_name="test.local", timeout=5)
    bounced = await transport.deliver(("127.0.0.1", rejecting.port, "127.0.0.2"), "a@x.example", ["b@y.example"], b"x")
    deferred = await transport.deliver(("127.0.0.1", busy.port, "127.0.0.2"), "a@x.example", ["b@y.example"], b"x")
    await transport.close()
    assert bounced == Bounced(550, "5.1.1 no such user")
    assert isinstance(deferred, Deferred) and deferred.code == 421


async def test_a_closed_port_is_a_deferral():
    transport = SmtpTransport(helo_name="test.local", timeout=2)
    outcome = await transport.deliver(("127.0.0.1", 1, "127.0.0.2"), "a@x.example", ["b@y.example"], b"x")
    assert isinstance(outcome, Deferred)
