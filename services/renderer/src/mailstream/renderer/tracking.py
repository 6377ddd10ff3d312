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

# Marks written into an HTML template where its links and its pixel go (mark_links), so that a
# message's tracking is a few string operations instead of a regular-expression pass over its
# rendered HTML. Private-use characters: a template holding one is not marked, and no rendered
# value can carry one (render.py strips them from every value).
LINK_START, LINK_END, PIXEL = "\ue000", "\ue001", "\ue002"
_NO_MARKS = str.maketrans("", "", LINK_START + LINK_END + PIXEL)
# Jinja syntax: a link inside a tag or an expression is left as it is (it may be data, not HTML).
_JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.S)


def strip_marks(value):
    """A value without the tracking marks (render.py's finalize: no value can forge a link)."""
    if isinstance(value, str) and (LINK_START in value or LINK_END in value or PIXEL in value):
        return value.translate(_NO_MARKS)
    return value


def _opted_out(html: str, match: re.Match[str]) -> bool:
    prefix = match.group(1)
    return NO_TRACK_ATTRIBUTE in prefix or NO_TRACK_ATTRIBUTE in html[match.end() : html.find(">", match.end())]


def mark_links(html: str) -> str | None:
    """The HTML template with every href that may be tracked between LINK_START and LINK_END, and
    PIXEL where the open pixel goes (before the last </body>, else at the end); None when the
    template holds a mark character already (its messages are tracked by track_html)."""
    if LINK_START in html or LINK_END in html or PIXEL in html:
        return None
    inside_jinja = [(m.start(), m.end()) for m in _JINJA.finditer(html)]

    def mark(match: re.Match[str]) -> str:
        prefix, double, single = match.groups()
        quote, raw = ('"', double) if double is not None else ("'", single)
        if _opted_out(html, match) or any(a <= match.start() < b for a, b in inside_jinja):
            return match.group(0)
        if "{" not in raw and not trackable(href_target(raw)):
            return match.group(0)  # mailto:, #anchor, a relative link: never tracked
        return f"{prefix}{quote}{LINK_START}{raw}{LINK_END}{quote}"

    marked = HREF.sub(mark, html)
    ends = list(_BODY_END.finditer(marked))
    if ends:
        at = ends[-1].start()
        return f"{marked[:at]}{PIXEL}{marked[at:]}"
    return marked + PIXEL


@dataclass(frozen=True, slots=True)
class Recipient:
    """Who a message's links are for: what every tracking link carries."""

    message_id: str
    account_id: int
    recipient: str
    email_id: int | None = None
    smtp_token_id: str | None = None
    email_version: int | None = None
    annotated: bool = False  # the send has custom_args or categories: the tracker looks them up


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
            annotated=who.annotated,
        )

    def link(self, kind: LinkKind, who: Recipient, url: str | None = None) -> str:
        return self._signer.url(
            self._base,
            TrackedLink(
                kind, who.message_id, who.account_id, who.recipient, who.email_id, who.smtp_token_id, url,
                who.email_version, annotated=who.annotated,
            ),
        )  # fmt: skip

    def unsubscribe_url(self, who: Recipient) -> str:
        return self.link(LinkKind.UNSUBSCRIBE, who)

    def is_ours(self, url: str) -> bool:
        return url.startswith(self._base + "/")

    def pixel(self, links: MessageLinks) -> str:
        return (
            f'<img src="{links.url(LinkKind.OPEN)}" width="1" height="1" alt="" '
            'style="display:block;width:1px;height:1px;border:0" />'
        )

    def _click(self, raw: str, links: MessageLinks, static: Mapping[str, int]) -> str:
        """The signed click link of an href as written, or "" when it is not tracked."""
        url = href_target(raw)
        if not trackable(url) or self.is_ours(url):
            return ""
        if (index := static.get(url)) is not None:
            return links.url(LinkKind.CLICK, link=index)
        return links.url(LinkKind.CLICK, target=url)

    def track_marked(self, html: str, who: Recipient, static: Mapping[str, int] = NO_LINKS) -> str:
        """Tracking of HTML rendered from a marked template (mark_links): each marked href signed,
        the pixel in its place, the marks gone."""
        links = self.links(who)
        parts = html.split(LINK_START)
        out = [parts[0]]
        signed: dict[str, str] = {}  # a receipt repeats the same few targets many times
        for part in parts[1:]:
            raw, _, rest = part.partition(LINK_END)
            link = signed.get(raw)
            if link is None:
                link = signed[raw] = self._click(raw, links, static) or raw
            out.append(link)
            out.append(rest)
        return "".join(out).replace(PIXEL, self.pixel(links), 1)

    def track_html(
        self,
        html: str,
        who: Recipient,
        static: Mapping[str, int] = NO_LINKS,
        *,
        opens: bool = True,
        clicks: bool = True,
    ) -> str:
        """Rewrites the links and adds the open pixel (before </body>, or at the end). `static`:
        the email version's static links, target -> index (signed as the index). `opens` /
        `clicks` False leave out the pixel / the links (a whole message's X-Mailstream-Tracking)."""
        links = self.links(who)
        # href as written -> its signed click link ("" when it is not tracked). A receipt repeats
        # the same few targets many times, and a message's link for a target is always the same.
        signed: dict[str, str] = {}

        def rewrite(match: re.Match[str]) -> str:
            prefix, double, single = match.groups()
            quote, raw = ('"', double) if double is not None else ("'", single)
            if _opted_out(html, match):
                return match.group(0)
            link = signed.get(raw)
            if link is None:
                link = signed[raw] = self._click(raw, links, static)
            if not link:
                return match.group(0)
            return f"{prefix}{quote}{link}{quote}"

        tracked = HREF.sub(rewrite, html) if clicks else html
        if not opens:
            return tracked
        pixel = self.pixel(links)
        ends = list(_BODY_END.finditer(tracked))
        if ends:
            at = ends[-1].start()
            return f"{tracked[:at]}{pixel}{tracked[at:]}"
        return tracked + pixel
