"""What an SMTP message becomes, decided without I/O: the From domain to check, the recipients'
checks, one SendRequested per recipient, and the replies."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import getaddresses

from mailstream.core.retry import MailstreamError
from mailstream.gateway.adapters.accepting import RequestRow
from mailstream.gateway.adapters.tokens_store import TokenRow
from mailstream.gateway.rules import valid_address
from mailstream.gateway.smtp.auth import Principal
from mailstream.schemas import SendRequested, SendSource


class Rejected(MailstreamError):
    """The message is refused with this SMTP reply (5xx: the same message would be refused again);
    nothing was recorded or published."""

    def __init__(self, reply: str) -> None:
        super().__init__(reply)
        self.reply = reply


def valid_recipient(address: str) -> bool:
    """A plain ASCII local@domain.tld, as the renderer and the API require: anything else (control
    or undecodable bytes, quoted or UTF-8 local parts) is refused at RCPT, not after DATA."""
    return valid_address(address)


# A line break that is not CRLF: parsers disagree on where such a line ends (SMTP smuggling,
# header lines the sender did not see); refused in the header section, as Postfix's
# smtpd_forbid_bare_newline does.
_BARE_LINE_BREAK = re.compile(rb"\r(?!\n)|(?<!\r)\n")


def from_domain(raw: bytes) -> tuple[str, str]:
    """(From header, its address's domain, lower-cased) or Rejected when there is no usable From."""
    header_section = raw.split(b"\r\n\r\n", 1)[0]
    if _BARE_LINE_BREAK.search(header_section):
        raise Rejected("550 5.6.0 Bare CR or LF in the message header; header lines must end with CRLF")
    headers = BytesHeaderParser(policy=compat32).parsebytes(raw)
    values = headers.get_all("From") or []
    if len(values) != 1:
        raise Rejected("550 5.6.0 The message must have exactly one From header")
    addresses = [a for _, a in getaddresses([str(values[0])]) if a]
    # The renderer sends from this address only if it is a plain local@domain (a quoted local
    # part such as "ceo@elsewhere"@own.example is not): refuse here, not after accepting.
    if len(addresses) != 1 or not valid_address(addresses[0]):
        raise Rejected("550 5.1.7 The From header must hold one address (name <user@domain>)")
    return str(values[0]), addresses[0].rpartition("@")[2].strip().lower().rstrip(".")


def check_token(principal: Principal, token: TokenRow | None) -> TokenRow:
    """The token still exists with the password the session authenticated with (reset/delete act at once)."""
    if token is None or token.password_hash != principal.password_hash:
        raise Rejected("535 5.7.8 The SMTP token was deleted or its password reset; authenticate again")
    return token


def foreign_domain(domain: str) -> Rejected:
    return Rejected(
        f"550 5.7.1 From domain {domain} is not a sending domain of this account; "
        "add and verify it in the domain settings (POST /mailstream/v1/sending-domains)"
    )


@dataclass(frozen=True, slots=True)
class Submission:
    events: list[SendRequested]

    @property
    def requests(self) -> list[tuple[RequestRow, SendRequested]]:
        """Each recipient's send_requests row with its record."""
        return [
            (RequestRow(e.status_id, e.message_id, e.account_id, None, None, e.to, e.requested_at), e)
            for e in self.events
        ]

    def reply(self) -> str:
        ids = [e.message_id for e in self.events]
        reply = "250 2.0.0 OK queued as " + " ".join(ids)
        if len(reply) > 500:  # an SMTP reply line stays under 512 octets
            reply = f"250 2.0.0 OK queued as {ids[0]} and {len(ids) - 1} more"
        return reply


def build_submission(token: TokenRow, recipients: list[str], raw: bytes, from_header: str, now: datetime) -> Submission:
    """One send request per envelope recipient, each with its own message and status id."""
    events = [
        SendRequested(
            message_id=str(uuid.uuid4()),
            status_id=str(uuid.uuid4()),
            account_id=token.account_id,
            to=rcpt,
            requested_at=now,
            from_override=from_header,
            source=SendSource.SMTP,
            smtp_token_id=token.id,
            campaign_id=str(token.email_campaign_id),
            raw_message=raw,
        )
        for rcpt in recipients
    ]
    return Submission(events)
