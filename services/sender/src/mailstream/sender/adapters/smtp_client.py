"""A lean asyncio SMTP client: one session per `SmtpClient`, RFC 5321 with PIPELINING (RFC 2920),
STARTTLS (RFC 3207), SIZE (RFC 1870), 8BITMIME and SMTPUTF8 (RFC 6531).

It replaces aiosmtplib on the delivery path, which cost 0.7-1.1 ms of CPU per 63 KB message (a
regex for dot-stuffing, one await and one packet per command). Here a transaction is one write of
MAIL FROM + every RCPT TO + DATA when the server offers PIPELINING (one command at a time when it
does not), then one write of the dot-stuffed message with its terminating '.'. Replies are parsed
as they arrive (smtp_reader.py), so a packet holding five replies costs one callback.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Sequence
from typing import NamedTuple

from mailstream.sender.adapters.smtp_reader import ReplyReader
from mailstream.sender.adapters.smtp_wire import (
    CRLF,
    Reply,
    SmtpAddressError,
    SmtpConnectionLost,
    SmtpError,
    SmtpProtocolError,
    SmtpRecipientsRefused,
    SmtpReplyError,
    SmtpTimeout,
    data_payload,
    normalize_line_endings,
    parse_ehlo,
    path,
)

TLS_MODES = ("opportunistic", "required", "disabled")
_ACCEPTED_RCPT = (250, 251)


class Sent(NamedTuple):
    reply: Reply  # the reply to the final '.', usually with the receiver's queue id
    refused: dict[str, Reply]  # recipients refused while others were accepted


class SmtpClient:
    """One SMTP session: `await SmtpClient.connect(...)`, `send()` per message, `quit()` at the end.

    After a refused transaction the session is reset (RSET) and stays usable; after a timeout, a
    lost connection, a protocol error or a 421 reply it is closed (`usable` is then False)."""

    def __init__(self, transport: asyncio.Transport, reader: ReplyReader, *, command_timeout: float) -> None:
        self._transport = transport
        self._reader = reader
        self._timeout = command_timeout
        self.extensions: dict[str, str] = {}

    @classmethod
    async def connect(
        cls,
        host: str,
        port: int,
        *,
        source_ip: str,
        helo_name: bytes,
        command_timeout: float,
        tls: str = "opportunistic",
        tls_context: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
    ) -> SmtpClient:
        """Connects from `source_ip`, reads the greeting, says EHLO (HELO if EHLO is refused) and
        applies the TLS mode: "opportunistic" upgrades when STARTTLS is offered, "required" fails
        without it, "disabled" never upgrades. Raises SmtpError; nothing stays open then."""
        if tls not in TLS_MODES:
            raise ValueError(f"unknown TLS mode {tls!r}, expected one of {TLS_MODES}")
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(command_timeout):
                transport, reader = await loop.create_connection(
                    lambda: ReplyReader(loop), host, port, local_addr=(source_ip, 0)
                )
        except TimeoutError:
            raise SmtpTimeout(f"timed out connecting to {host}:{port} from {source_ip}") from None
        except OSError as exc:
            raise SmtpConnectionLost(f"cannot connect to {host}:{port} from {source_ip}: {exc}") from exc
        client = cls(transport, reader, command_timeout=command_timeout)
        try:
            greeting = await client._reply("the greeting")
            if greeting.code != 220:
                raise SmtpReplyError(greeting, "CONNECT")
            await client._hello(helo_name)
            if tls != "disabled" and "starttls" in client.extensions:
                await client._start_tls(tls_context or _unverified_tls(), server_hostname or host, helo_name)
            elif tls == "required":
                raise SmtpError("TLS is required for this route, but the server does not offer STARTTLS")
        except BaseException:
            client.close()
            raise
        return client

    @property
    def usable(self) -> bool:
        """Open, and in step with the server (nothing unexpected received while idle)."""
        return self._reader.ended is None and not self._transport.is_closing() and not self._reader.unread

    async def send(self, mail_from: str, recipients: Sequence[str], message: bytes) -> Sent:
        """One mail transaction. Delivered when at least one recipient is accepted (as aiosmtplib's
        sendmail did); raises SmtpRecipientsRefused when none is, SmtpReplyError for any other
        refusal, SmtpConnectionLost (or its SmtpTimeout) when no reply came."""
        if not recipients:
            raise ValueError("a mail transaction needs at least one recipient")
        message = normalize_line_endings(message)
        utf8 = not (mail_from.isascii() and all(r.isascii() for r in recipients))
        mail = b"MAIL FROM:" + path(mail_from) + self._mail_parameters(message, utf8) + CRLF
        rcpts = [b"RCPT TO:" + path(r) + CRLF for r in recipients]
        data_reply: Reply | None = None
        if "pipelining" in self.extensions:
            self._write(b"".join((mail, *rcpts, b"DATA\r\n")))
            mail_reply = await self._reply("MAIL FROM")
            rcpt_replies = [await self._reply("RCPT TO") for _ in rcpts]
            data_reply = await self._reply("DATA")
        else:
            mail_reply = await self._command(mail, "MAIL FROM")
            rcpt_replies = [await self._command(rcpt, "RCPT TO") for rcpt in rcpts] if mail_reply.code == 250 else []
            if any(r.code in _ACCEPTED_RCPT for r in rcpt_replies):
                data_reply = await self._command(b"DATA\r\n", "DATA")
        if mail_reply.code != 250:
            await self._abandon(SmtpReplyError(mail_reply, "MAIL FROM"), data_reply)
        refusals = [
            SmtpReplyError(reply, "RCPT TO", rcpt)
            for rcpt, reply in zip(recipients, rcpt_replies, strict=True)
            if reply.code not in _ACCEPTED_RCPT
        ]
        if len(refusals) == len(recipients):
            await self._abandon(SmtpRecipientsRefused(refusals), data_reply)
        assert data_reply is not None  # some recipient was accepted, so DATA was sent
        if data_reply.code != 354:
            await self._abandon(SmtpReplyError(data_reply, "DATA"))
        self._write(data_payload(message))
        final = await self._reply("the end of the message data")
        if final.code != 250:
            await self._abandon(SmtpReplyError(final, "end of data"), transaction_open=False)
        return Sent(final, {e.recipient or "": Reply(e.code or 0, e.message) for e in refusals})

    async def quit(self) -> None:
        """Ends the session politely when it is still usable, and closes it in any case."""
        try:
            if self.usable:
                await self._command(b"QUIT\r\n", "QUIT")
        except SmtpError:
            pass
        finally:
            self.close()

    def close(self) -> None:
        if not self._transport.is_closing():
            self._transport.close()
        self._reader.ended = self._reader.ended or "closed by the client"

    def _mail_parameters(self, message: bytes, utf8: bool) -> bytes:
        """SIZE (the octets of the normalized message, RFC 1870) when the server takes it; BODY=8BITMIME
        for a message with 8-bit bytes when offered (otherwise the message still goes: receivers take
        8-bit data in practice and the renderer's MIME is 7-bit base64); SMTPUTF8 for non-ASCII addresses."""
        parameters = b""
        if "size" in self.extensions:
            parameters += b" SIZE=%d" % len(message)
        if "8bitmime" in self.extensions and not message.isascii():
            parameters += b" BODY=8BITMIME"
        if utf8:
            if "smtputf8" not in self.extensions:
                raise SmtpAddressError("5.6.7 a non-ASCII address needs SMTPUTF8, which the server does not offer")
            parameters += b" SMTPUTF8"
        return parameters

    async def _abandon(
        self, error: SmtpReplyError, data_reply: Reply | None = None, *, transaction_open: bool = True
    ) -> None:
        """Raises `error` after making the session ready for the next transaction: RSET, or closing
        when a refused transaction still got 354 to DATA (a dropped connection delivers nothing,
        an empty message's '.' might) or when RSET fails."""
        try:
            if data_reply is not None and data_reply.code == 354:
                self.close()
            elif transaction_open and (await self._command(b"RSET\r\n", "RSET")).code != 250:
                self.close()
        except SmtpError:
            self.close()
        raise error

    async def _hello(self, helo_name: bytes) -> None:
        reply = await self._command(b"EHLO " + helo_name + CRLF, "EHLO")
        if reply.code == 250:
            self.extensions = parse_ehlo(reply.text)
            return
        if 500 <= reply.code < 600:  # a server without ESMTP: plain SMTP, no extensions
            reply = await self._command(b"HELO " + helo_name + CRLF, "HELO")
            if reply.code == 250:
                self.extensions = {}
                return
        raise SmtpReplyError(reply, "EHLO")

    async def _start_tls(self, context: ssl.SSLContext, server_hostname: str, helo_name: bytes) -> None:
        reply = await self._command(b"STARTTLS\r\n", "STARTTLS")
        if reply.code != 220:
            raise SmtpReplyError(reply, "STARTTLS")
        if self._reader.unread:  # RFC 3207 5: nothing may come before the handshake; it was injected
            raise SmtpProtocolError("data received after the 220 reply to STARTTLS")
        loop = asyncio.get_running_loop()
        try:
            self._transport = await loop.start_tls(
                self._transport,
                self._reader,
                context,
                server_hostname=server_hostname,
                ssl_handshake_timeout=self._timeout,
            )
        except OSError as exc:  # ssl.SSLError, ConnectionError and the handshake's TimeoutError are OSErrors
            raise SmtpConnectionLost(f"TLS handshake failed: {exc}") from exc
        self._reader.transport = self._transport
        await self._hello(helo_name)  # what the server said before TLS must be forgotten

    def _write(self, data: bytes) -> None:
        if self._reader.ended is not None or self._transport.is_closing():
            raise SmtpConnectionLost(self._reader.ended or "connection closed")
        self._transport.write(data)

    async def _command(self, line: bytes, what: str) -> Reply:
        self._write(line)
        return await self._reply(what)

    async def _reply(self, what: str) -> Reply:
        """The next reply; a 421 (the server closes the channel, RFC 5321 3.8) raises at once, so
        replies that can no longer come (pipelined ones) are not waited for."""
        try:
            if not self._reader.ready:  # pipelined replies often are: no timer for those
                async with asyncio.timeout(self._timeout):
                    await self._reader.wait()
            reply = self._reader.pop(what)
        except TimeoutError:
            self.close()  # a late reply would be taken for the next command's
            raise SmtpTimeout(f"no reply to {what} within {self._timeout:g} s") from None
        except SmtpError:
            self.close()
            raise
        if reply.code == 421:
            self.close()
            raise SmtpReplyError(reply, what)
        return reply


def _unverified_tls() -> ssl.SSLContext:
    """Opportunistic TLS as MTAs do it: encrypted, certificate not verified (RFC 7435)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context
