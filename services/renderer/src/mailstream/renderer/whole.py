"""Messages that arrive whole from the SMTP ingress: not merged, headers kept, HTML parts tracked.

These are parsed with the `email` package (rare next to API sends, and their structure is
arbitrary). Changes: Bcc removed (envelope only), our X-Mailstream-ID set (any client-supplied
one replaced, so feedback reports cannot be pointed at another message), Message-ID and Date
added when missing, and every inline text/html part rewritten by `track` and re-encoded as
base64 UTF-8.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import SMTP
from email.utils import format_datetime, getaddresses

from mailstream.renderer.mime import MESSAGE_ID_HEADER, header_text

_parser = BytesParser(policy=SMTP)


class CorruptMessage(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class WholeMessage:
    mime: bytes
    from_address: str  # the From header's address ("" when it has none)


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
    raw: bytes, *, message_id: str, sending_domain: str, date: datetime, track: Callable[[str], str] | None
) -> WholeMessage:
    try:
        msg = _parser.parsebytes(raw)
        del msg["Bcc"]
        del msg[MESSAGE_ID_HEADER]
        msg[MESSAGE_ID_HEADER] = header_text(message_id)
        if msg["Message-ID"] is None:
            msg["Message-ID"] = f"<{header_text(message_id)}@{sending_domain}>"
        if msg["Date"] is None:
            msg["Date"] = format_datetime(date)
        if track is not None:
            for part in msg.walk():
                if part.get_content_type() == "text/html" and not part.is_attachment():
                    _track_part(part, track)
        from_addresses = [addr for _, addr in getaddresses([str(v) for v in msg.get_all("From", [])]) if addr]
        return WholeMessage(mime=msg.as_bytes(policy=SMTP), from_address=from_addresses[0] if from_addresses else "")
    except CorruptMessage:
        raise
    except Exception as exc:  # the email package raises many kinds on malformed input
        raise CorruptMessage(f"message cannot be parsed or serialized: {type(exc).__name__}: {exc}") from exc
