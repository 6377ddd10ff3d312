"""Messages that arrive whole from the SMTP ingress: not merged, headers kept, HTML parts tracked.

These are parsed with the `email` package (rare next to API sends, and their structure is
arbitrary). Changes: Bcc removed (envelope only), our X-Mailstream-ID set (any client-supplied
one replaced, so feedback reports cannot be pointed at another message), Message-ID and Date
added when missing, and every inline text/html part rewritten by `track` and re-encoded as
base64 UTF-8. An `X-Mailstream-Tracking: opens=off; clicks=off` header (the SendGrid API's
tracking_settings; either may be on) says what `track` adds, and is removed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.generator import BytesGenerator
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import SMTP
from email.utils import format_datetime, getaddresses
from io import BytesIO

from mailstream.renderer.mime import header_text
from mailstream.schemas.headers import MESSAGE_ID_HEADER

_parser = BytesParser(policy=SMTP)
TRACKING_HEADER = "X-Mailstream-Tracking"
# In a folded header a line break is followed by whitespace; anything else starts a new header.
_NEW_HEADER_LINE = re.compile(rb"\r\n[^ \t]|\r[^ \n\t]|\n[^ \t]")


class CorruptMessage(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class WholeMessage:
    mime: bytes
    from_address: str  # the From header's address ("" when it has none)


class _CheckedGenerator(BytesGenerator):
    """CPython's fix for CVE-2024-6923 (3.11.10+; we may run on 3.11.7): refolding a long header
    whose encoded word decodes to CR LF wrote the CR LF raw, a header of the attacker's choosing
    (a Bcc:) in the delivered message. Such a header makes the message corrupt instead."""

    def _write_headers(self, msg) -> None:
        for name, value in msg.raw_items():
            folded = self.policy.fold_binary(name, value)
            if _NEW_HEADER_LINE.search(folded.removesuffix(b"\r\n")):
                raise CorruptMessage(f"the {name} header would be written as more than one header line")
            self._fp.write(folded)
        self.write(self._NL)


def _as_bytes(msg: EmailMessage) -> bytes:
    out = BytesIO()
    _CheckedGenerator(out, mangle_from_=False, policy=SMTP).flatten(msg)
    return out.getvalue()


def _track_part(part: EmailMessage, track: Callable[[str], str]) -> None:
    charset = part.get_content_charset() or "utf-8"
    payload = part.get_payload(decode=True) or b""
    try:
        html = payload.decode(charset, errors="replace")
    except LookupError:
        html = payload.decode("utf-8", errors="replace")
    del part["Content-Transfer-Encoding"]
    part.set_payload(track(html).encode("utf-8"), charset="utf-8")  # base64-encodes, sets the CTE


def prepare_whole(
    raw: bytes,
    *,
    message_id: str,
    sending_domain: str,
    date: datetime,
    track: Callable[..., str] | None,
) -> WholeMessage:
    """`track(html, opens=, clicks=)` rewrites an HTML part."""
    try:
        msg = _parser.parsebytes(raw)
        del msg["Bcc"]
        del msg[MESSAGE_ID_HEADER]
        msg[MESSAGE_ID_HEADER] = header_text(message_id)
        if msg["Message-ID"] is None:
            msg["Message-ID"] = f"<{header_text(message_id)}@{sending_domain}>"
        if msg["Date"] is None:
            msg["Date"] = format_datetime(date)
        opens, clicks = tracking_wanted(str(msg[TRACKING_HEADER] or ""))
        del msg[TRACKING_HEADER]
        if track is not None and (opens or clicks):
            for part in msg.walk():
                if part.get_content_type() == "text/html" and not part.is_attachment():
                    _track_part(part, lambda html: track(html, opens=opens, clicks=clicks))
        from_addresses = [addr for _, addr in getaddresses([str(v) for v in msg.get_all("From", [])]) if addr]
        return WholeMessage(mime=_as_bytes(msg), from_address=from_addresses[0] if from_addresses else "")
    except CorruptMessage:
        raise
    except Exception as exc:  # the email package raises many kinds on malformed input
        raise CorruptMessage(f"message cannot be parsed or serialized: {type(exc).__name__}: {exc}") from exc


def tracking_wanted(value: str) -> tuple[bool, bool]:
    """(opens, clicks) of an X-Mailstream-Tracking value: each on unless it says `=off`."""
    found = dict(p.strip().lower().partition("=")[::2] for p in value.split(";") if "=" in p)
    return found.get("opens") != "off", found.get("clicks") != "off"
