"""Forged and altered tracking and unsubscribe links, made from real links delivered to the sink:
every one is refused (404, no redirect) and publishes nothing on email.engagement or
email.unsubscribe; the genuine link still works afterwards."""

from __future__ import annotations

import base64
import dataclasses
import email
import hashlib
import hmac
import re
from email.policy import default

import httpx
import pytest

from mailstream.schemas import EngagementRecorded, UnsubscribeRecorded
from mailstream.schemas.links import read_payload, unsigned_payload
from mailstream.schemas.topics import ENGAGEMENT, UNSUBSCRIBE

pytestmark = pytest.mark.e2e

BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"
NEWS = '<p>News</p><a href="https://shop.example/sale">Sale</a> <a href="{{ unsubscribe_link }}">Unsubscribe</a>'
B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def mac(secret: bytes, key_id: str, payload: str) -> str:
    return b64(hmac.new(secret, f"{key_id}.{payload}".encode(), hashlib.sha256).digest()[:16])


async def delivered_links(h, api, key, raw_sink) -> dict[str, str]:
    """kind -> the token of a real tracked link (o, c, u) of a MARKETING message at the sink, and its message id."""
    email_id, reply = await h.create_email(api, key, html=NEWS, subscriptionType="MARKETING")
    assert email_id, reply.text
    to = h.unique()
    sent = await api.post(h.SEND, headers=h.auth(key), json={"emailId": email_id, "message": {"to": to}})
    assert sent.status_code == 200, sent.text
    (raw,) = await raw_sink.wait(to, within=90)
    msg = email.message_from_bytes(raw, policy=default)
    html = msg.get_body(("html",)).get_content()
    base = re.escape(h.SETTINGS.tracking_base_url)
    tokens = {
        "o": re.search(rf"{base}/o/([A-Za-z0-9_.-]+)", html).group(1),
        "c": re.search(rf"{base}/c/([A-Za-z0-9_.-]+)", html).group(1),
        "u": re.search(r"/u/([A-Za-z0-9_.-]+)", str(msg["List-Unsubscribe"])).group(1),
    }
    return {**tokens, "message_id": msg["X-Mailstream-ID"]}


def flipped(token: str) -> list[str]:
    """The token with each base64 character changed in its top bit (never only padding bits)."""
    out = []
    for i, ch in enumerate(token):
        if ch == ".":
            continue
        out.append(token[:i] + B64[B64.index(ch) ^ 32] + token[i + 1 :])
    return out


def rewrite(token: str, **changes) -> str:
    """The token's payload with fields changed, its key id and MAC kept."""
    payload, key_id, tag = token.split(".")
    changed = dataclasses.replace(read_payload(payload), **changes)
    return f"{unsigned_payload(changed)}.{key_id}.{tag}"


def forgeries(mine: dict, theirs: dict, account_id: int) -> list[tuple[str, str, str]]:
    """(what, method, path) for every altered link."""
    out: list[tuple[str, str, str]] = []
    methods = {"o": "GET", "c": "GET", "u": "POST"}
    for kind in ("o", "c", "u"):
        token = mine[kind]
        payload, key_id, tag = token.split(".")
        for f in flipped(token):
            out.append(("flipped byte", methods[kind], f"/{kind}/{f}"))
        # another account's link with this message id (their MAC, our message)
        out.append(
            (
                "their token, our message id",
                methods[kind],
                f"/{kind}/" + rewrite(theirs[kind], message_id=mine["message_id"]),
            )
        )
        out.append(
            (
                "their token, our message and account",
                methods[kind],
                f"/{kind}/" + rewrite(theirs[kind], message_id=mine["message_id"], account_id=account_id),
            )
        )
        out.append(
            ("our payload, their MAC", methods[kind], f"/{kind}/{payload}.{key_id}.{theirs[kind].split('.')[2]}")
        )
        # unknown, retired or guessed keys
        for kid in ("nokey", "dev-0", "dev-2", key_id + "x", ""):
            out.append(("unknown key id", methods[kind], f"/{kind}/{payload}.{kid}.{tag}"))
            out.append(
                (
                    "unknown key id, self-signed",
                    methods[kind],
                    f"/{kind}/{payload}.{kid}.{mac(b'guessed-secret-123456', kid, payload)}",
                )
            )
        out.append(
            (
                "known key id, wrong secret",
                methods[kind],
                f"/{kind}/{payload}.{key_id}.{mac(b'development-only-link-key', key_id, payload)}",
            )
        )
        out.append(("truncated MAC", methods[kind], f"/{kind}/{payload}.{key_id}.{tag[:-4]}"))
        out.append(("no MAC", methods[kind], f"/{kind}/{payload}.{key_id}"))
        out.append(("extra segment", methods[kind], f"/{kind}/{token}.extra"))
        out.append(
            ("recipient changed", methods[kind], f"/{kind}/" + rewrite(token, recipient="victim@victim.example"))
        )
        out.append(("account changed", methods[kind], f"/{kind}/" + rewrite(token, account_id=account_id + 1)))
        out.append(("long garbage", methods[kind], f"/{kind}/" + "A" * 8000))
        out.append(("non-ascii", methods[kind], f"/{kind}/{payload}é.{key_id}.{tag}"))
    # a valid token with a changed URL, or on another kind's route
    out.append(("click target changed", "GET", "/c/" + rewrite(mine["c"], url="https://evil.example/", link=None)))
    out.append(
        ("click target made javascript", "GET", "/c/" + rewrite(mine["c"], url="javascript:alert(1)", link=None))
    )
    out.append(("click link index changed", "GET", "/c/" + rewrite(mine["c"], url=None, link=1)))
    out.append(("open token as click", "GET", f"/c/{mine['o']}"))
    out.append(("click token as open", "GET", f"/o/{mine['c']}"))
    out.append(("unsubscribe token as open", "GET", f"/o/{mine['u']}"))
    out.append(("click token as unsubscribe", "POST", f"/u/{mine['c']}"))
    out.append(("open token as unsubscribe", "POST", f"/u/{mine['o']}"))
    return out


async def test_forged_and_altered_links_are_404_without_events(h, api, account, raw_sink, tail):
    key, their_key = account("sec-links"), account("sec-links-other")
    mine = await delivered_links(h, api, key, raw_sink)
    theirs = await delivered_links(h, api, their_key, raw_sink)
    account_id = read_payload(mine["o"].split(".")[0]).account_id
    attempts = forgeries(mine, theirs, account_id)
    ids = {mine["message_id"], theirs["message_id"]}
    accepted = []
    async with (
        tail(ENGAGEMENT, record_type=EngagementRecorded) as engagement,
        tail(UNSUBSCRIBE, record_type=UnsubscribeRecorded) as unsubscribes,
        httpx.AsyncClient(base_url=h.SETTINGS.tracking_base_url, timeout=10, follow_redirects=False) as tracker,
    ):
        for what, method, path in attempts:
            reply = await tracker.request(
                method,
                path,
                headers={"User-Agent": BROWSER},
                data={"List-Unsubscribe": "One-Click"} if method == "POST" else None,
            )
            if reply.status_code != 404 or "Location" in reply.headers:
                accepted.append((what, method, path[:80], reply.status_code, reply.headers.get("Location")))
        # a valid click with a target in the query still goes only to the signed target
        reply = await tracker.get(f"/c/{mine['c']}?url=https://evil.example/&u=https://evil.example/")
        assert reply.status_code == 302 and reply.headers["Location"] == "https://shop.example/sale"
        ours = lambda r: r.message_id in ids or r.account_id == account_id  # noqa: E731
        events = await engagement.collect(ours, count=2, within=4)
        unsubs = await unsubscribes.collect(ours, count=1, within=1)
        # the genuine links still work (and show the tails see events)
        assert (await tracker.get(f"/o/{mine['o']}", headers={"User-Agent": BROWSER})).status_code == 200
        genuine = await engagement.collect(ours, count=len(events) + 1, within=20)
    kinds = sorted({a[0] for a in attempts})
    print(
        f"Forged links: {len(attempts)} altered links ({len(kinds)} kinds: flipped bytes at every position of "
        f"open/click/unsubscribe tokens, another account's token with this message id, unknown/retired/guessed "
        f"key ids, changed URL/recipient/account, wrong route), {len(attempts) - len(accepted)} x 404, "
        f"{len(accepted)} accepted; events from them: {len(events) - 1} engagement (1 = the query-string click), "
        f"{len(unsubs)} unsubscribe"
    )
    assert accepted == [], accepted[:5]
    assert len(events) == 1 and events[0].url == "https://shop.example/sale"  # only the genuine click above
    assert unsubs == []
    assert len(genuine) == len(events) + 1
