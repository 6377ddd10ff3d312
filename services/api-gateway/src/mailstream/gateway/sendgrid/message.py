"""The whole message of one personalization, as the SMTP API's clients send them: the renderer
then tracks its HTML, signs it and sends it as it is (services/renderer whole.py). Written
directly (no email.message objects): the parts every personalization shares (attachments, and the
body when nothing in it is personal) are encoded once per request.

    multipart/mixed                      (only with attachments)
      multipart/related                  (only with inline attachments: content_id)
        multipart/alternative            text/plain + text/html (or just one of them)
        inline parts
      attachments

The renderer finishes messages in exactly this form with byte operations (services/renderer
built.py: an HTML part is `Content-Type: text/html; charset="utf-8"` + base64, no Message-ID,
Date, Bcc or X-Mailstream-* header but X-Mailstream-Tracking): a change here must keep that form,
or the renderer falls back to parsing the message with the `email` package (correct, ~6x slower).
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Sequence
from email.header import Header
from email.utils import formataddr

from mailstream.gateway.sendgrid.request import Address, Attachment

CRLF = b"\r\n"
# Read and removed by the renderer: which of the open pixel and click links it adds.
TRACKING_HEADER = "X-Mailstream-Tracking"


def mailbox(a: Address) -> str:
    return formataddr((a.name or "", a.email), charset="utf-8")


def header(name: str, value: str) -> bytes:
    if value.isascii() and len(value) + len(name) < 76:
        return f"{name}: {value}".encode() + CRLF
    folded = Header(value, "utf-8" if not value.isascii() else "us-ascii", header_name=name).encode(linesep="\r\n")
    return f"{name}: {folded}".encode() + CRLF


def addresses(name: str, found: Sequence[Address]) -> bytes:
    return f"{name}: " + ",\r\n ".join(mailbox(a) for a in found) + "\r\n" if found else ""  # type: ignore[return-value]


def _b64(data: bytes) -> bytes:
    return base64.encodebytes(data).replace(b"\n", CRLF)


def _part(content_type: str, body: bytes, extra: bytes = b"") -> bytes:
    return f"Content-Type: {content_type}\r\nContent-Transfer-Encoding: base64\r\n".encode() + extra + CRLF + _b64(body)


def _multipart(subtype: str, parts: Sequence[bytes], boundary: str) -> bytes:
    b = boundary.encode()
    out = [f'Content-Type: multipart/{subtype}; boundary="{boundary}"\r\n\r\n'.encode()]
    for part in parts:
        out += [b"--", b, CRLF, part, CRLF]
    out += [b"--", b, b"--", CRLF]
    return b"".join(out)


def attachment_part(a: Attachment) -> bytes:
    name = Header(a.filename, "utf-8").encode(maxlinelen=0) if not a.filename.isascii() else a.filename.replace('"', "")
    extra = f'Content-Disposition: {a.disposition}; filename="{name}"\r\n'
    if a.content_id:
        extra += f"Content-ID: <{a.content_id}>\r\n"
    return _part(f'{a.type}; name="{name}"', a.content, extra.encode())


class Body:
    """The MIME body (with its Content-Type header) of a text and an HTML part and the request's
    attachments; the attachments are encoded once."""

    def __init__(self, attachments: Sequence[Attachment]) -> None:
        self.boundary = f"=_ms_{uuid.uuid4().hex}"  # '=_' never occurs in base64 parts
        self.inline = [attachment_part(a) for a in attachments if a.disposition == "inline"]
        self.attached = [attachment_part(a) for a in attachments if a.disposition != "inline"]

    def build(self, text: str | None, html: str | None) -> bytes:
        parts = []
        if text is not None:
            parts.append(_part('text/plain; charset="utf-8"', text.encode()))
        if html is not None:
            parts.append(_part('text/html; charset="utf-8"', html.encode()))
        body = parts[0] if len(parts) == 1 else _multipart("alternative", parts, self.boundary + "a")
        if self.inline:
            body = _multipart("related", [body, *self.inline], self.boundary + "r")
        if self.attached:
            body = _multipart("mixed", [body, *self.attached], self.boundary + "m")
        return body


def whole_message(
    *,
    from_: Address,
    to: Sequence[Address],
    cc: Sequence[Address],
    reply_to: Sequence[Address],
    subject: str,
    headers: dict[str, str],
    track_opens: bool,
    track_clicks: bool,
    body: bytes,
) -> bytes:
    out = [
        f"From: {mailbox(from_)}\r\n".encode(),
        addresses("To", to).encode(),
        addresses("Cc", cc).encode(),
        addresses("Reply-To", reply_to).encode(),
        header("Subject", subject),
        b"MIME-Version: 1.0\r\n",
    ]
    out += [header(name, value) for name, value in headers.items()]
    if not (track_opens and track_clicks):
        out.append(f"{TRACKING_HEADER}: opens={'on' if track_opens else 'off'}; clicks="
                   f"{'on' if track_clicks else 'off'}\r\n".encode())  # fmt: skip
    out.append(body)
    return b"".join(out)
