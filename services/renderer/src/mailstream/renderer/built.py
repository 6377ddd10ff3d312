"""Whole messages the gateway built itself (the SendGrid-compatible API, source API), in the one
form its builder writes (api-gateway sendgrid/message.py): finished with byte operations instead
of the `email` package's parse and re-serialization, which cost ~6 ms for a 48 KB receipt.

The form: a header section without Message-ID, Date, Bcc or X-Mailstream-* (the gateway refuses
them in `headers`) but for an optional X-Mailstream-Tracking line; every inline HTML part exactly
`Content-Type: text/html; charset="utf-8"` + `Content-Transfer-Encoding: base64`, then a blank
line and base64 lines (an attachment's part has a name and a Content-Disposition, so it is never
taken for one). Anything else is not this form: `prepare_built` answers None and the message
takes `whole.prepare_whole`, as an SMTP client's does.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from datetime import datetime
from email.utils import format_datetime, getaddresses

from mailstream.renderer.mime import header_text
from mailstream.renderer.whole import TRACKING_HEADER, WholeMessage, tracking_wanted

_HTML_PART = re.compile(
    rb'(?:^|(?<=\r\n))Content-Type: text/html; charset="utf-8"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
    rb"((?:[A-Za-z0-9+/=]+\r\n)+)"
)
_TRACKING_LINE = re.compile(rb"(?:^|(?<=\r\n))" + TRACKING_HEADER.encode() + rb": ([^\r\n]*)\r\n", re.I)
_FROM_LINE = re.compile(rb"(?:^|(?<=\r\n))From: ([^\r\n]*)\r\n")
_BARE_LINE_BREAK = re.compile(rb"\r(?!\n)|(?<!\r)\n")
# Headers this form never has: a message holding one is finished by prepare_whole.
_FOREIGN = re.compile(rb"(?:^|\r\n)(?:bcc|message-id|date|x-mailstream-id|resent-[a-z-]+):", re.I)


def prepare_built(
    raw: bytes, *, message_id: str, sending_domain: str, date: datetime, track: Callable[..., str] | None
) -> WholeMessage | None:
    head, blank, body = raw.partition(b"\r\n\r\n")
    head += b"\r\n"
    if not blank or _FOREIGN.search(head) or _BARE_LINE_BREAK.search(head):
        return None
    from_line = _FROM_LINE.search(head)
    if from_line is None:
        return None
    setting = _TRACKING_LINE.search(head)
    opens, clicks = tracking_wanted(setting.group(1).decode("ascii", "replace") if setting else "")
    if setting:
        head = head[: setting.start()] + head[setting.end() :]
    message = head + b"\r\n" + body
    if track is not None and (opens or clicks):
        try:
            message = _HTML_PART.sub(lambda m: _tracked(m, track, opens, clicks), message)
        except (binascii.Error, UnicodeDecodeError):
            return None
    ours = header_text(message_id)
    added = (
        f"X-Mailstream-ID: {ours}\r\nMessage-ID: <{ours}@{sending_domain}>\r\nDate: {format_datetime(date)}\r\n"
    ).encode()
    addresses = [a for _, a in getaddresses([from_line.group(1).decode("utf-8", "replace")]) if a]
    return WholeMessage(mime=added + message, from_address=addresses[0] if addresses else "")


def _tracked(match: re.Match[bytes], track: Callable[..., str], opens: bool, clicks: bool) -> bytes:
    html = base64.b64decode(match.group(1), validate=False).decode("utf-8")
    encoded = base64.encodebytes(track(html, opens=opens, clicks=clicks).encode("utf-8")).replace(b"\n", b"\r\n")
    return match.group(0)[: match.start(1) - match.start(0)] + encoded
