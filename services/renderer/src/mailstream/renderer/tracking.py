"""Open pixel and click tracking for HTML parts, with the signed stateless links of
`mailstream.schemas.links` (the tracker verifies them: no row per link, no open redirect).

Only absolute http(s) links in `<a>`/`<area>` hrefs are rewritten. mailto:, tel:, in-page
anchors, relative links, links already pointing at the tracker (the unsubscribe link) and
anchors marked `data-mailstream-notrack` are left alone. A target that is one of the email
version's static links is signed as its index in that list (a short link); others carry the URL.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from mailstream.schemas.links import HREF, LinkKind, LinkSigner, MessageLinks, TrackedLink, href_target, trackable

_BODY_END = re.compile(r"</body\s*>", re.I)
NO_TRACK_ATTRIBUTE = "data-mailstream-notrack"
NO_LINKS: Mapping[str, int] = {}


@dataclass(frozen=True, slots=True)
class Recipient:
    """Who a message's links are for: what every tracking link carries."""

    message_id: str
    account_id: int
    recipient: str
    email_id: int | None = None
    smtp_token_id: str | None = None
    email_version: int | None = None


class Tracker:
    def __init__(self, signer: LinkSigner, base_url: str) -> None:
        self._signer = signer
        self._base = base_url.rstrip("/")

    def links(self, who: Recipient) -> MessageLinks:
        return self._signer.for_message(
            self._base,
            message_id=who.message_id,
            account_id=who.account_id,
            recipient=who.recipient,
            email_id=who.email_id,
            email_version=who.email_version,
            smtp_token_id=who.smtp_token_id,
        )

    def link(self, kind: LinkKind, who: Recipient, url: str | None = None) -> str:
        return self._signer.url(
            self._base,
            TrackedLink(
                kind, who.message_id, who.account_id, who.recipient, who.email_id, who.smtp_token_id, url,
                who.email_version,
            ),
        )  # fmt: skip

    def unsubscribe_url(self, who: Recipient) -> str:
        return self.link(LinkKind.UNSUBSCRIBE, who)

    def is_ours(self, url: str) -> bool:
        return url.startswith(self._base + "/")

    def track_html(self, html: str, who: Recipient, static: Mapping[str, int] = NO_LINKS) -> str:
        """Rewrites the links and adds the open pixel (before </body>, or at the end). `static`:
        the email version's static links, target -> index (signed as the index)."""
        links = self.links(who)
        # href as written -> its signed click link ("" when it is not tracked). A receipt repeats
        # the same few targets many times, and a message's link for a target is always the same.
        signed: dict[str, str] = {}

        def rewrite(match: re.Match[str]) -> str:
            prefix, double, single = match.groups()
            quote, raw = ('"', double) if double is not None else ("'", single)
            if NO_TRACK_ATTRIBUTE in prefix or NO_TRACK_ATTRIBUTE in html[match.end() : html.find(">", match.end())]:
                return match.group(0)
            link = signed.get(raw)
            if link is None:
                url = href_target(raw)
                if not trackable(url) or self.is_ours(url):
                    link = ""
                elif (index := static.get(url)) is not None:
                    link = links.url(LinkKind.CLICK, link=index)
                else:
                    link = links.url(LinkKind.CLICK, target=url)
                signed[raw] = link
            if not link:
                return match.group(0)
            return f"{prefix}{quote}{link}{quote}"

        tracked = HREF.sub(rewrite, html)
        pixel = (
            f'<img src="{links.url(LinkKind.OPEN)}" width="1" height="1" alt="" '
            'style="display:block;width:1px;height:1px;border:0" />'
        )
        ends = list(_BODY_END.finditer(tracked))
        if ends:
            at = ends[-1].start()
            return f"{tracked[:at]}{pixel}{tracked[at:]}"
        return tracked + pixel
