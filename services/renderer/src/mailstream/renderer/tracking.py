"""Open pixel and click tracking for HTML parts, with the signed stateless links of
`mailstream.schemas.links` (the tracker verifies them: no row per link, no open redirect).

Only absolute http(s) links in `<a>`/`<area>` hrefs are rewritten. mailto:, tel:, in-page
anchors, relative links, links already pointing at the tracker (the unsubscribe link) and
anchors marked `data-mailstream-notrack` are left alone.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html as html_lib
import json
import re
from dataclasses import dataclass

from mailstream.schemas.links import LinkKind, LinkSigner, TrackedLink

# <a ... href="..."> or <area ...>, either quote; case-insensitive by hand (re.I is much slower here).
_HREF = re.compile(r"""(<[aA](?:[rR][eE][aA])?\s(?:[^>]*?\s)?[hH][rR][eE][fF]\s*=\s*)(?:"([^"]*)"|'([^']*)')""")
_json_string = json.encoder.encode_basestring_ascii  # what json.dumps uses for a str (ensure_ascii)
_BODY_END = re.compile(r"</body\s*>", re.I)
NO_TRACK_ATTRIBUTE = "data-mailstream-notrack"


@dataclass(frozen=True, slots=True)
class Recipient:
    """Who a message's links are for: what every tracking link carries."""

    message_id: str
    account_id: int
    recipient: str
    email_id: int | None = None
    smtp_token_id: str | None = None


class MessageLinks:
    """The signed links of one message, produced exactly as `LinkSigner.token` does (a unit test
    compares them) but with the JSON of the per-message fields and the keyed HMAC state computed
    once per message instead of once per link: a receipt has a dozen links."""

    def __init__(self, keyed: hmac.HMAC, key_id: str, base: str, who: Recipient) -> None:
        self._keyed, self._key_id, self._base = keyed, key_id, base
        fields = [who.message_id, who.account_id, who.recipient, who.email_id, who.smtp_token_id]
        self._middle = json.dumps(fields, separators=(",", ":"))[1:-1]

    def url(self, kind: LinkKind, target: str | None = None) -> str:
        url = "null" if target is None else _json_string(target)  # exactly json.dumps(target)
        fields = f'["{kind.value}",{self._middle},{url}]'
        payload = base64.urlsafe_b64encode(fields.encode()).rstrip(b"=")
        mac = self._keyed.copy()
        mac.update(payload)
        signature = base64.urlsafe_b64encode(mac.digest()[:16]).rstrip(b"=").decode("ascii")
        return f"{self._base}/{kind.value}/{payload.decode('ascii')}.{self._key_id}.{signature}"


class Tracker:
    def __init__(self, signer: LinkSigner, base_url: str) -> None:
        self._signer = signer
        self._base = base_url.rstrip("/")
        # LinkSigner signs with its first key; its MAC input is "key_id." + payload.
        self._key_id, key = signer.signing_key()
        self._keyed = hmac.new(key, f"{self._key_id}.".encode(), hashlib.sha256)

    def links(self, who: Recipient) -> MessageLinks:
        return MessageLinks(self._keyed, self._key_id, self._base, who)

    def link(self, kind: LinkKind, who: Recipient, url: str | None = None) -> str:
        return self._signer.url(
            self._base,
            TrackedLink(kind, who.message_id, who.account_id, who.recipient, who.email_id, who.smtp_token_id, url),
        )

    def unsubscribe_url(self, who: Recipient) -> str:
        return self.link(LinkKind.UNSUBSCRIBE, who)

    def is_ours(self, url: str) -> bool:
        return url.startswith(self._base + "/")

    def track_html(self, html: str, who: Recipient) -> str:
        """Rewrites the links and adds the open pixel (before </body>, or at the end)."""
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
                url = html_lib.unescape(raw).strip()
                tracked = url.lower().startswith(("http://", "https://")) and not self.is_ours(url)
                link = signed[raw] = links.url(LinkKind.CLICK, url) if tracked else ""
            if not link:
                return match.group(0)
            return f"{prefix}{quote}{link}{quote}"

        tracked = _HREF.sub(rewrite, html)
        pixel = (
            f'<img src="{links.url(LinkKind.OPEN)}" width="1" height="1" alt="" '
            'style="display:block;width:1px;height:1px;border:0" />'
        )
        ends = list(_BODY_END.finditer(tracked))
        if ends:
            at = ends[-1].start()
            return f"{tracked[:at]}{pixel}{tracked[at:]}"
        return tracked + pixel
