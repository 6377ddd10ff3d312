"""The bytes of an SMTP session and its errors, without I/O: replies parsed from what the server
sends, EHLO keywords, envelope paths, the DATA payload. smtp_client.py does the I/O around them.

Cost matters here: every delivered message (25-63 KB) passes through `normalize_line_endings`
and `data_payload`, so they use bytes methods that run in C rather than a regex per line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mailstream.core.retry import MailstreamError

CRLF = b"\r\n"
MAX_LINE = 8192  # longest reply line accepted (RFC 5321 allows 512; some servers send more)
MAX_REPLY_LINES = 256  # a bound on multi-line replies, so a broken server cannot grow memory forever
_DOT_HOPS = 64  # dots looked at one by one before searching for CRLF '.' instead (see data_payload)

_BARE_LINE_ENDS = re.compile(rb"\r\n|\n|\r(?!\n)")
# Bytes that could end the path on the command line or start a new command (CR, LF, NUL, ...),
# or add a parameter (space). A quoted local part with a space is refused too: nobody sends one.
_UNSAFE_IN_PATH = re.compile(r"[\x00-\x20\x7f<>]")


class SmtpError(MailstreamError):
    """A failed SMTP exchange. `code` is the server's reply code (None when there was no reply);
    `message` the reply text or what went wrong. outcomes.classify_smtp_error reads both."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class SmtpProtocolError(SmtpError):
    """The server sent something that is not an SMTP reply: the session cannot go on."""


class SmtpAddressError(SmtpError):
    """An address that cannot be put on the command line: refused before anything is sent, so the
    session stays usable. 553 is what a server would answer: the message bounces, it is not retried."""

    def __init__(self, message: str) -> None:
        super().__init__(message, 553)


class SmtpReplyError(SmtpError):
    """The server refused a command; the reply is in `code` and `message`."""

    def __init__(self, reply: Reply, command: str, recipient: str | None = None) -> None:
        super().__init__(reply.text, reply.code)
        self.command = command
        self.recipient = recipient


class SmtpRecipientsRefused(SmtpReplyError):
    """Every RCPT TO was refused. `recipients` holds each refusal in order; the first decides the
    outcome (outcomes.classify_smtp_error), as it did with aiosmtplib's exception of that name."""

    def __init__(self, refusals: list[SmtpReplyError]) -> None:
        first = refusals[0]
        super().__init__(Reply(first.code or 0, first.message), "RCPT TO", first.recipient)
        self.recipients = refusals


class SmtpConnectionLost(SmtpError):
    """No reply can come: the connection failed, closed, or was closed by us after a timeout."""

    retriable = True  # another attempt (a retry tier) may well get through


class SmtpTimeout(SmtpConnectionLost, TimeoutError):
    """No reply within the command timeout (the session is closed: a late reply would be misread)."""


@dataclass(frozen=True, slots=True)
class Reply:
    code: int
    text: str  # the lines of a multi-line reply joined with "\n", codes removed (as aiosmtplib kept them)


class ReplyParser:
    """Turns received bytes into complete replies. A packet may hold several replies (PIPELINING)
    or part of one; lines end in CRLF (a bare LF is tolerated), continuation lines are `250-...`."""

    __slots__ = ("_lines", "_partial")

    def __init__(self) -> None:
        self._partial = b""
        self._lines: list[bytes] = []

    @property
    def pending(self) -> bool:
        """Part of a reply has arrived and is not complete yet."""
        return bool(self._partial or self._lines)

    def feed(self, data: bytes) -> list[Reply]:
        if self._partial:
            data = self._partial + data
        replies = []
        start = 0
        while (end := data.find(b"\n", start)) >= 0:
            line = data[start:end]
            start = end + 1
            code, separator = line[:3], line[3:4]
            if not (code.isdigit() and len(code) == 3 and separator in (b" ", b"-", b"\r", b"")):
                raise SmtpProtocolError(f"not an SMTP reply line: {line[:80]!r}")
            if len(line) > MAX_LINE or len(self._lines) >= MAX_REPLY_LINES:
                raise SmtpProtocolError("reply too long")
            self._lines.append(line[4:].strip(b" \t\r"))
            if separator != b"-":
                text = b"\n".join(self._lines).decode("utf-8", "replace")
                replies.append(Reply(int(code), text))
                self._lines = []
        self._partial = data[start:]
        if len(self._partial) > MAX_LINE:
            raise SmtpProtocolError("reply line too long")
        return replies


def parse_ehlo(text: str) -> dict[str, str]:
    """EHLO reply text -> {keyword (lowercase): parameters}, e.g. {"size": "10240000", "pipelining": ""}.
    The first line is the server's name and greeting, not an extension."""
    extensions = {}
    for line in text.split("\n")[1:]:
        keyword, _, parameters = line.strip().partition(" ")
        if keyword:
            extensions[keyword.lower()] = parameters.strip()
    return extensions


def path(address: str) -> bytes:
    """`<address>` for MAIL FROM / RCPT TO ("" is the null reverse path `<>`)."""
    if _UNSAFE_IN_PATH.search(address):
        raise SmtpAddressError(f"5.1.3 address not allowed on an SMTP command line: {address!r}")
    return b"<" + address.encode("utf-8") + b">"


class CrlfMessage(bytes):
    """A message known to end every line, and itself, with CRLF. The DKIM signer returns one (it
    normalizes before signing, to sign exactly what is sent), so the SMTP client does not scan the
    same 25-63 KB again: that check costs ~30-90 µs per 25-63 KB message on the 2-core machines."""

    __slots__ = ()


def normalize_line_endings(message: bytes) -> bytes:
    """CRLF for every line end and a final CRLF, as the message travels in DATA. A bare CR or LF
    becomes CRLF: receivers that took a bare LF for a line end could otherwise read a '.' line
    the client did not send as the end of data (SMTP smuggling). The renderer writes CRLF only;
    that is proved without a regex pass: when every line end found by splitlines() (CR, LF or
    CRLF) is two bytes long, all are CRLF (half the cost of counting CR, LF and CRLF)."""
    if isinstance(message, CrlfMessage):
        return message
    lines = message.splitlines()
    unterminated = bool(lines) and not message.endswith((b"\r", b"\n"))
    if len(message) - sum(map(len, lines)) != 2 * (len(lines) - unterminated):
        message = _BARE_LINE_ENDS.sub(CRLF, message)
    return message if message.endswith(CRLF) else message + CRLF


def data_payload(message: bytes) -> bytes:
    """What follows the 354 reply: a normalized message (see above) with the '.' that starts a
    line doubled (RFC 5321 4.5.2, the receiver removes it) and the terminating '.' line."""
    if _has_line_starting_with_dot(message):
        message = message.replace(b"\r\n.", b"\r\n..")
        if message.startswith(b"."):
            message = b"." + message
    return message + b".\r\n"


def _has_line_starting_with_dot(message: bytes) -> bool:
    """Rendered MIME has few dots, all in headers (the bodies are base64): hopping from dot to dot
    (memchr) answers in ~2 µs, where searching for CRLF '.' walks all of a 63 KB message (~55 µs).
    A body full of dots (plain text) makes the hops pointless: then the search decides."""
    position = message.find(b".")
    for _ in range(_DOT_HOPS):
        if position <= 0:
            return position == 0
        if message[position - 1] == 0x0A:  # LF: in a normalized message the end of a CRLF
            return True
        position = message.find(b".", position + 1)
    return b"\r\n." in message
