"""Our SMTP client (adapters/smtp_client.py, through SmtpTransport) against servers on loopback:
a scripted one that records every packet it receives (for PIPELINING and failure cases) and
aiosmtpd (the `smtp_server` fixture) for what a real receiver keeps."""

from __future__ import annotations

import asyncio
import email
import email.policy
from dataclasses import dataclass, field

import pytest

from mailstream.sender.adapters.smtp import Route, SmtpTransport
from mailstream.sender.adapters.smtp_client import SmtpClient
from mailstream.sender.outcomes import Bounced, Deferred, Delivered

pytestmark = pytest.mark.integration

EHLO = ("scripted.example at your service", "PIPELINING", "SIZE 10240000", "8BITMIME")


@dataclass
class Script:
    """What the scripted server answers, and what it saw."""

    greeting: str = "220 scripted.example ESMTP"
    ehlo: tuple[str, ...] = EHLO  # the lines of the EHLO reply; empty: EHLO is not recognized
    rcpt: dict[str, str] = field(default_factory=dict)  # address -> reply (default 250)
    drop_after: int | None = None  # bytes of message data after which the connection is dropped
    silent_after_data: bool = False  # never answers the final '.'
    after_message: bytes = b""  # sent, unasked, after the reply to the final '.'
    starttls_reply: bytes = b"454 4.7.0 TLS not available\r\n"
    dribble: bool = False  # every reply in 3-byte pieces, 1 ms apart (each its own packet)
    packets: list[bytes] = field(default_factory=list)
    commands: list[bytes] = field(default_factory=list)
    messages: list[tuple[bytes, list[bytes], bytes]] = field(default_factory=list)  # (MAIL line, RCPT lines, data)
    sessions: int = 0


class ScriptedSmtp(asyncio.Protocol):
    def __init__(self, script: Script) -> None:
        self.s = script
        self.buffer = b""
        self.data: bytes | None = None  # message data being received, None outside DATA
        self.mail: bytes = b""
        self.rcpts: list[bytes] = []
        self.accepted = 0
        self.sent_at = 0.0  # when the last dribbled piece goes out

    def connection_made(self, transport):
        self.t = transport
        self.s.sessions += 1
        self.write(self.s.greeting.encode() + b"\r\n")

    def write(self, data: bytes) -> None:
        if not self.s.dribble:
            self.t.write(data)
            return
        loop = asyncio.get_running_loop()
        for i in range(0, len(data), 3):
            self.sent_at = max(self.sent_at, loop.time()) + 0.001
            loop.call_at(self.sent_at, lambda piece=data[i : i + 3]: self.t.is_closing() or self.t.write(piece))

    def data_received(self, chunk: bytes) -> None:
        self.s.packets.append(chunk)
        self.buffer += chunk
        while True:
            if self.data is not None:
                if self.s.drop_after is not None and len(self.buffer) >= self.s.drop_after:
                    self.t.abort()
                    return
                end = self.buffer.find(b"\r\n.\r\n")
                if end < 0:
                    return
                stuffed, self.buffer = self.buffer[: end + 2], self.buffer[end + 5 :]
                self.data = None
                lines = stuffed.split(b"\r\n")
                data = b"\r\n".join(line[1:] if line.startswith(b".") else line for line in lines)
                self.s.messages.append((self.mail, self.rcpts, data))
                if not self.s.silent_after_data:
                    self.write(b"250 2.0.0 queued as ABC123\r\n" + self.s.after_message)
                self.mail, self.rcpts, self.accepted = b"", [], 0
                continue
            line, sep, rest = self.buffer.partition(b"\r\n")
            if not sep:
                return
            self.buffer = rest
            self.s.commands.append(line)
            self.write(self.answer(line).encode() + b"\r\n")

    def answer(self, line: bytes) -> str:
        verb = line[:4].upper()
        if verb == b"EHLO":
            if not self.s.ehlo:
                return "502 5.5.2 Error: command not recognized"
            *first, last = self.s.ehlo
            return "".join(f"250-{x}\r\n" for x in first) + f"250 {last}"
        if verb in (b"HELO", b"NOOP"):
            return "250 scripted.example"
        if verb == b"MAIL":
            self.mail = line
            return "250 2.1.0 Ok"
        if verb == b"RCPT":
            self.rcpts.append(line)
            address = line.partition(b"<")[2].partition(b">")[0].decode()
            reply = self.s.rcpt.get(address, "250 2.1.5 Ok")
            self.accepted += reply.startswith("2")
            return reply
        if verb == b"DATA":
            if not self.accepted:
                return "554 5.5.1 Error: no valid recipients"
            self.data = b""
            return "354 End data with <CR><LF>.<CR><LF>"
        if verb == b"RSET":
            self.mail, self.rcpts, self.accepted = b"", [], 0
            return "250 2.0.0 Ok"
        if verb == b"STAR":
            return self.s.starttls_reply.decode().removesuffix("\r\n")
        if verb == b"QUIT":
            self.t.close()
            return "221 2.0.0 Bye"
        return "502 5.5.2 Error: command not recognized"


@pytest.fixture
async def scripted():
    """start(Script(...)) -> (script, port) of a scripted server on 127.0.0.1."""
    servers = []

    async def start(script: Script) -> tuple[Script, int]:
        server = await asyncio.get_running_loop().create_server(lambda: ScriptedSmtp(script), "127.0.0.1", 0)
        servers.append(server)
        return script, server.sockets[0].getsockname()[1]

    yield start
    for server in servers:
        server.close()


def receipt(size: int = 2000) -> bytes:
    line = b"Line of the receipt, long enough to look like one.\r\n"
    return b"From: orders@shop.example\r\nTo: jane@example.com\r\nSubject: receipt\r\n\r\n" + line * (size // len(line))


async def test_pipelines_mail_rcpt_and_data_in_one_packet_when_offered(scripted):
    script, port = await scripted(Script())
    transport = SmtpTransport(helo_name="test.local", timeout=5)
    rcpts = ["a@example.com", "b@example.com", "c@example.com"]
    outcome = await transport.deliver(Route("127.0.0.1", port, "127.0.0.2"), "orders@shop.example", rcpts, receipt())
    await transport.close()
    assert outcome == Delivered(250, "2.0.0 queued as ABC123", "127.0.0.1")
    envelope = [p for p in script.packets if p.startswith(b"MAIL FROM")]
    assert envelope == [
        b"MAIL FROM:<orders@shop.example> SIZE=%d\r\n" % len(receipt())
        + b"".join(b"RCPT TO:<%s>\r\n" % r.encode() for r in rcpts)
        + b"DATA\r\n"
    ]
    assert script.packets[script.packets.index(envelope[0]) + 1] == receipt() + b".\r\n"  # body and dot: one write
    assert script.messages[0][2] == receipt()


@pytest.mark.parametrize("pipelining", [True, False])
async def test_replies_that_arrive_in_pieces_are_read_whole(scripted, pipelining):
    ehlo = EHLO if pipelining else ("scripted.example", "8BITMIME")
    script, port = await scripted(Script(ehlo=ehlo, dribble=True))
    transport = SmtpTransport(helo_name="test.local", timeout=5)
    route = Route("127.0.0.1", port, "127.0.0.2")
    outcomes = [await transport.deliver(route, "o@shop.example", ["a@example.com"], receipt()) for _ in range(2)]
    await transport.close()
    assert outcomes == [Delivered(250, "2.0.0 queued as ABC123", "127.0.0.1")] * 2 and script.sessions == 1


async def test_sends_one_command_at_a_time_without_pipelining(scripted):
    script, port = await scripted(Script(ehlo=("scripted.example", "8BITMIME")))
    transport = SmtpTransport(helo_name="test.local", timeout=5)
    rcpts = ["a@example.com", "b@example.com"]
    outcome = await transport.deliver(Route("127.0.0.1", port, "127.0.0.2"), "orders@shop.example", rcpts, receipt())
    await transport.close()
    assert isinstance(outcome, Delivered)
    commands = [p for p in script.packets if p[:4] in (b"MAIL", b"RCPT", b"DATA")]
    assert commands == [
        b"MAIL FROM:<orders@shop.example>\r\n",
        b"RCPT TO:<a@example.com>\r\n",
        b"RCPT TO:<b@example.com>\r\n",
        b"DATA\r\n",
    ]


@pytest.mark.parametrize("pipelining", [True, False])
async def test_refused_recipients_do_not_stop_the_accepted_ones(scripted, pipelining):
    ehlo = EHLO if pipelining else ("scripted.example",)
    script, port = await scripted(Script(ehlo=ehlo, rcpt={"gone@example.com": "550 5.1.1 no such user"}))
    transport = SmtpTransport(helo_name="test.local", timeout=5)
    route = Route("127.0.0.1", port, "127.0.0.2")
    outcome = await transport.deliver(route, "o@shop.example", ["a@example.com", "gone@example.com"], receipt())
    await transport.close()
    assert isinstance(outcome, Delivered)
    assert script.messages[0][1] == [b"RCPT TO:<a@example.com>", b"RCPT TO:<gone@example.com>"]


async def test_partial_refusal_at_a_real_receiver_keeps_only_the_accepted(smtp_server, receiver_class):
    receiver = await smtp_server(receiver_class(lambda a: "550 5.1.1 no such user" if a.startswith("gone") else None))
    transport = SmtpTransport(helo_name="test.local", timeout=5)
    rcpts = ["a@example.com", "gone@example.com", "b@example.com"]
    outcome = await transport.deliver(Route("127.0.0.1", receiver.port, "127.0.0.2"), "o@shop.example", rcpts, b"x")
    await transport.close()
    assert isinstance(outcome, Delivered) and receiver.received[0]["rcpt_tos"] == ["a@example.com", "b@example.com"]


@pytest.mark.parametrize("pipelining", [True, False])
async def test_every_recipient_refused_bounces_and_the_session_goes_on_after_rset(scripted, pipelining):
    ehlo = EHLO if pipelining else ("scripted.example",)
    script, port = await scripted(Script(ehlo=ehlo, rcpt={"gone@example.com": "550 5.1.1 no such user"}))
    transport = SmtpTransport(helo_name="test.local", timeout=5)
    route = Route("127.0.0.1", port, "127.0.0.2")
    bounced = await transport.deliver(route, "o@shop.example", ["gone@example.com"], receipt())
    delivered = await transport.deliver(route, "o@shop.example", ["a@example.com"], receipt())
    await transport.close()
    assert bounced == Bounced(550, "5.1.1 no such user", "127.0.0.1") and isinstance(delivered, Delivered)
    assert b"RSET" in script.commands and script.sessions == 1 and len(script.messages) == 1
    assert (b"DATA" in script.commands[: script.commands.index(b"RSET")]) is pipelining  # sent only pipelined


async def test_dot_stuffing_delivers_lines_that_start_with_a_dot_intact(smtp_server, receiver_class):
    receiver = await smtp_server(receiver_class())
    body = ".\r\n..\r\n.leading dot\r\n...three\r\nmiddle . dot\r\n.\r\nend.\r\n"
    mime = f"From: orders@shop.example\r\nTo: jane@example.com\r\nSubject: dots\r\n\r\n{body}".encode()
    transport = SmtpTransport(helo_name="test.local", timeout=5)
    outcome = await transport.deliver(Route("127.0.0.1", receiver.port, "127.0.0.2"), "o@shop.example", ["j@x"], mime)
    await transport.close()
    assert isinstance(outcome, Delivered) and receiver.received[0]["data"] == mime
    parsed = email.message_from_bytes(receiver.received[0]["data"], policy=email.policy.SMTP)
    assert parsed["Subject"] == "dots" and parsed.get_content() == body


async def test_a_421_greeting_defers_without_opening_a_connection(scripted):
    _, port = await scripted(Script(greeting="421 4.3.2 service not available"))
    transport = SmtpTransport(helo_name="test.local", timeout=5)
    outcome = await transport.deliver(Route("127.0.0.1", port, "127.0.0.2"), "o@shop.example", ["a@x.example"], b"x")
    assert outcome == Deferred(421, "4.3.2 service not available", "127.0.0.1")
    assert transport.connections_opened == 0


async def test_a_connection_dropped_mid_data_defers_and_the_next_message_gets_a_new_one(scripted):
    script, port = await scripted(Script(drop_after=10_000))
    transport = SmtpTransport(helo_name="test.local", timeout=5)
    route = Route("127.0.0.1", port, "127.0.0.2")
    dropped = await transport.deliver(route, "o@shop.example", ["a@example.com"], receipt(60_000))
    assert isinstance(dropped, Deferred) and dropped.code is None and script.messages == []
    script.drop_after = None
    delivered = await transport.deliver(route, "o@shop.example", ["a@example.com"], receipt(60_000))
    await transport.close()
    assert isinstance(delivered, Delivered) and len(script.messages) == 1 and transport.connections_opened == 2


async def test_no_reply_to_the_final_dot_times_out_and_closes_the_session(scripted):
    script, port = await scripted(Script(silent_after_data=True))
    transport = SmtpTransport(helo_name="test.local", timeout=0.5)
    route = Route("127.0.0.1", port, "127.0.0.2")
    outcome = await transport.deliver(route, "o@shop.example", ["a@example.com"], receipt())
    assert isinstance(outcome, Deferred) and outcome.code is None and "within 0.5 s" in outcome.reply
    script.silent_after_data = False
    assert isinstance(await transport.deliver(route, "o@shop.example", ["a@example.com"], receipt()), Delivered)
    await transport.close()
    assert script.sessions == 2


async def test_a_421_while_idle_retires_the_session(scripted):
    script, port = await scripted(Script(after_message=b"421 4.4.2 idle for too long\r\n"))
    transport = SmtpTransport(helo_name="test.local", timeout=5)
    route = Route("127.0.0.1", port, "127.0.0.2")
    for _ in range(2):
        assert isinstance(await transport.deliver(route, "o@shop.example", ["a@example.com"], receipt()), Delivered)
        await asyncio.sleep(0.05)  # the unasked 421 arrives while the session is idle
    await transport.close()
    assert script.sessions == 2 and len(script.messages) == 2


async def test_a_421_to_rcpt_defers_and_closes_the_session(scripted):
    script, port = await scripted(Script(rcpt={"a@example.com": "421 4.7.0 too many messages, closing"}))
    transport = SmtpTransport(helo_name="test.local", timeout=5)
    route = Route("127.0.0.1", port, "127.0.0.2")
    outcome = await transport.deliver(route, "o@shop.example", ["a@example.com"], receipt())
    assert outcome == Deferred(421, "4.7.0 too many messages, closing", "127.0.0.1")
    assert isinstance(await transport.deliver(route, "o@shop.example", ["b@example.com"], receipt()), Delivered)
    await transport.close()
    assert script.sessions == 2


async def test_a_multi_line_ehlo_is_parsed_and_its_extensions_used(scripted):
    ehlo = ("scripted.example Hello", "PIPELINING", "SIZE 10240000", "ENHANCEDSTATUSCODES", "8BITMIME", "SMTPUTF8")
    script, port = await scripted(Script(ehlo=ehlo))
    client = await SmtpClient.connect("127.0.0.1", port, source_ip="127.0.0.2", helo_name=b"t.local", command_timeout=5)
    assert client.extensions == {
        "pipelining": "",
        "size": "10240000",
        "enhancedstatuscodes": "",
        "8bitmime": "",
        "smtputf8": "",
    }
    message = "From: orders@shop.example\r\nSubject: Grüße\r\n\r\nGrüße aus Köln\r\n".encode()
    sent = await client.send("orders@shop.example", ["jürgen@bücher.example"], message)
    await client.quit()
    assert sent.reply.code == 250 and sent.refused == {}
    assert script.messages[0][0] == b"MAIL FROM:<orders@shop.example> SIZE=%d BODY=8BITMIME SMTPUTF8" % len(message)
    assert script.messages[0][1] == ["RCPT TO:<jürgen@bücher.example>".encode()]


async def test_a_non_ascii_address_bounces_when_the_server_lacks_smtputf8(scripted):
    script, port = await scripted(Script())
    transport = SmtpTransport(helo_name="test.local", timeout=5)
    route = Route("127.0.0.1", port, "127.0.0.2")
    outcome = await transport.deliver(route, "o@shop.example", ["jürgen@bücher.example"], receipt())
    delivered = await transport.deliver(route, "o@shop.example", ["a@example.com"], receipt())
    await transport.close()
    assert isinstance(outcome, Bounced) and "SMTPUTF8" in outcome.reply and isinstance(delivered, Delivered)
    assert script.sessions == 1 and sum(c.startswith(b"MAIL") for c in script.commands) == 1  # nothing sent for it


async def test_falls_back_to_helo_when_ehlo_is_not_recognized(scripted):
    script, port = await scripted(Script(ehlo=()))
    transport = SmtpTransport(helo_name="test.local", timeout=5)
    outcome = await transport.deliver(Route("127.0.0.1", port, "127.0.0.2"), "o@shop.example", ["a@x.example"], b"x")
    await transport.close()
    assert isinstance(outcome, Delivered)
    assert script.commands[:3] == [b"EHLO test.local", b"HELO test.local", b"MAIL FROM:<o@shop.example>"]


async def test_bytes_injected_after_the_starttls_reply_fail_the_connection(scripted):
    script, port = await scripted(
        Script(ehlo=(*EHLO, "STARTTLS"), starttls_reply=b"220 2.0.0 Ready\r\n250 injected before TLS\r\n")
    )
    transport = SmtpTransport(helo_name="test.local", timeout=5)
    outcome = await transport.deliver(Route("127.0.0.1", port, "127.0.0.2"), "o@shop.example", ["a@x.example"], b"x")
    assert isinstance(outcome, Deferred) and "after the 220 reply to STARTTLS" in outcome.reply
    assert script.messages == [] and transport.connections_opened == 0
