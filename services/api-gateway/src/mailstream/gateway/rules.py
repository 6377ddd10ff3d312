"""Pure rules of a send: address checks, the transactional/marketing rules, template checks.

No I/O here: the handlers gather the facts (email, contact, suppressions) and ask these.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email.utils import parseaddr
from html.parser import HTMLParser

from mailstream.schemas import SendResult

# Role prefixes HubSpot refuses as single-send recipients (the contract, S3).
ROLE_PREFIXES = frozenset(
    {
        "abuse",
        "no-reply",
        "noreply",
        "root",
        "spam",
        "security",
        "undisclosed-recipients",
        "unsubscribe",
        "inoc",
        "postmaster",
        "privacy",
    }
)
_LOCAL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$")


def valid_address(address: str) -> bool:
    """A bare address (local@domain.tld), nothing around it, no header injection."""
    if any(c in address for c in '\r\n<> ,;"') or address != address.strip():
        return False
    local, at, domain = address.rpartition("@")
    return bool(at) and bool(_LOCAL.match(local)) and ".." not in local and bool(_DOMAIN.match(domain))


def is_role_address(address: str) -> bool:
    return address.rpartition("@")[0].lower() in ROLE_PREFIXES


def valid_from(value: str) -> bool:
    """A From value: a bare address or 'Name <address>'."""
    if any(c in value for c in "\r\n"):
        return False
    _, addr = parseaddr(value)
    return bool(addr) and valid_address(addr)


@dataclass(frozen=True, slots=True)
class RecipientFacts:
    """What is known about a recipient in one account: its contact row and the tracker's suppressions."""

    subscription_status: str = "NOT_SPECIFIED"
    quarantined: bool = False
    double_opt_in: str = "NOT_REQUIRED"
    bounced: bool = False
    spam_reported: bool = False
    suppressions: frozenset[str] = field(default_factory=frozenset)  # BOUNCED, SPAM_REPORT, UNSUBSCRIBED, MANUAL


@dataclass(frozen=True, slots=True)
class EmailFacts:
    state: str
    single_send_api: bool
    subscription_type: str
    automation: bool = False


def from_domain(from_: str | None) -> str | None:
    """The domain of a From override ('Name <a@b.example>' or a bare address), lower-cased."""
    if not from_:
        return None
    return parseaddr(from_)[1].rpartition("@")[2].lower() or None


def refusal(
    *,
    email: EmailFacts | None,
    require_single_send_api: bool,
    to: str,
    from_: str | None,
    recipient: RecipientFacts,
    sending_domain_ok: bool | None = None,
    require_automation: bool = False,
) -> SendResult | None:
    """The sendResult that ends a send at once, or None when it may go ahead.

    A TRANSACTIONAL email bypasses subscription, quarantine and double opt-in status; a
    MARKETING one is refused for each. A MANUAL suppression (the account's block), a previous
    hard bounce or a spam report stops both.
    sending_domain_ok=False (the check is on and the From domain is not a verified sending
    domain of the account) ends it with UNCONFIGURED_SENDING_DOMAIN; None skips the check.
    A trigger's send (require_automation) needs an email saved for automation.
    """
    if email is None or email.state == "ARCHIVED" or (require_single_send_api and not email.single_send_api):
        return SendResult.MISSING_CONTENT
    if require_automation and not email.automation:
        return SendResult.MISSING_CONTENT
    if not valid_address(to) or is_role_address(to):
        return SendResult.INVALID_TO_ADDRESS
    if from_ is not None and not valid_from(from_):
        return SendResult.INVALID_FROM_ADDRESS
    if sending_domain_ok is False:
        return SendResult.UNCONFIGURED_SENDING_DOMAIN
    if "MANUAL" in recipient.suppressions:
        return SendResult.BLOCKED_ADDRESS  # the account's own block, as the renderer's rules.undeliverable
    if recipient.bounced or "BOUNCED" in recipient.suppressions:
        return SendResult.PREVIOUSLY_BOUNCED
    if recipient.spam_reported or "SPAM_REPORT" in recipient.suppressions:
        return SendResult.PREVIOUS_SPAM
    if email.subscription_type == "MARKETING":
        if recipient.subscription_status == "UNSUBSCRIBED" or "UNSUBSCRIBED" in recipient.suppressions:
            return SendResult.PREVIOUSLY_UNSUBSCRIBED_PORTAL
        if recipient.quarantined:
            return SendResult.QUARANTINED_ADDRESS
        if recipient.double_opt_in == "PENDING":
            return SendResult.EMAIL_UNCONFIRMED
    return None


# ---- templates ------------------------------------------------------------------------------

UNSUBSCRIBE_TOKEN = re.compile(r"\{\{\s*unsubscribe_link(_all)?\s*\}\}")
_UNSUBSCRIBE_HREF = re.compile(r"""<a\s[^>]*href\s*=\s*["']?[^"'>]*unsubscribe""", re.IGNORECASE)


def has_unsubscribe_link(html: str) -> bool:
    """A MARKETING email must offer an unsubscribe link: the {{ unsubscribe_link }} token or a link to one."""
    return bool(UNSUBSCRIBE_TOKEN.search(html) or _UNSUBSCRIBE_HREF.search(html))


class _TextExtractor(HTMLParser):
    BLOCKS = frozenset({"p", "div", "br", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol"})
    SKIP = frozenset({"script", "style", "head", "title"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0
        self.href: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIP:
            self.skipping += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n")
        if tag == "li":
            self.parts.append("- ")
        if tag == "a":
            self.href = dict(attrs).get("href")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif tag in self.BLOCKS:
            self.parts.append("\n")
        if tag == "a" and self.href:
            self.parts.append(f" ({self.href})")
            self.href = None

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.parts.append(re.sub(r"\s+", " ", data))


def html_to_text(html: str) -> str:
    """The plain-text part derived from the HTML: paragraphs kept, links as 'text (url)'."""
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    lines = [line.strip() for line in "".join(parser.parts).splitlines()]
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()
