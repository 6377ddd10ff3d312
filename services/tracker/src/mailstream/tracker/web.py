"""The tracker's HTTP routes: open pixel, click redirect, unsubscribe, feedback-loop intake.

Tracking requests verify the signed token and publish to Kafka; nothing is written to the
database on that path, and it reads only an indexed click's target and, for an annotated link
(its message has custom_args or categories), the message's, both cached. A bad or tampered token
is a 404: no event, no redirect.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from aiohttp import web
from prometheus_client import Counter

from mailstream.schemas.links import LinkKind, LinkSigner, TrackedLink
from mailstream.tracker import engagement, feedback, feedback_auth, handlers
from mailstream.tracker.adapters.links import LinkTargets
from mailstream.tracker.adapters.messages import MessageLookups
from mailstream.tracker.adapters.publisher import Publisher
from mailstream.tracker.adapters.recent import RecentDeliveries
from mailstream.tracker.adapters.sns_certs import CertUnavailable, SnsCertificates
from mailstream.tracker.machine import is_machine

log = logging.getLogger(__name__)

PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")  # 1x1 transparent GIF
NO_CACHE = {
    "Cache-Control": "no-cache, no-store, must-revalidate, private, max-age=0",
    "Pragma": "no-cache",
    "Expires": "0",
}
REQUESTS = Counter("mailstream_tracker_requests_total", "Tracking and feedback requests", ["endpoint", "outcome"])
FEEDBACK_LIMIT = 10 * 1024 * 1024


def routes(t: Tracking) -> list[web.RouteDef]:
    return [
        web.get("/o/{token}", t.open),  # aiohttp answers HEAD on GET routes too
        web.get("/c/{token}", t.click),
        web.get("/u/{token}", t.unsubscribe_page),
        web.post("/u/{token}", t.unsubscribe),
        web.post("/mailstream/v1/feedback/arf", t.feedback_arf),
        web.post("/mailstream/v1/feedback/ses", t.feedback_ses),
    ]


class Annotations(Protocol):
    async def of(self, message_id: str) -> engagement.Annotation | None: ...


@dataclass
class Tracking:
    signer: LinkSigner
    targets: LinkTargets
    recent: RecentDeliveries
    publisher: Publisher
    messages: MessageLookups
    annotations: Annotations  # adapters.messages.MessageAnnotations
    scan_window: timedelta
    feedback: FeedbackCredentials

    async def verified(self, request: web.Request, kind: LinkKind, endpoint: str) -> TrackedLink:
        link = self.signer.verify(request.match_info["token"])
        if link is not None and kind is LinkKind.CLICK and link.link is not None and link.url is None:
            link = await self._resolved(link)
        if link is None or link.kind is not kind or (kind is LinkKind.CLICK and not _safe_target(link.url)):
            REQUESTS.labels(endpoint, "bad_token").inc()
            raise web.HTTPNotFound(text="not found", headers=NO_CACHE)
        return link

    async def _resolved(self, link: TrackedLink) -> TrackedLink | None:
        """An indexed click link with its target from the email version's static links."""
        if link.email_id is None or link.email_version is None or link.link is None:
            return None
        url = await self.targets.target(link.account_id, link.email_id, link.email_version, link.link)
        return dataclasses.replace(link, url=url) if url else None

    async def record(self, request: web.Request, link: TrackedLink) -> None:
        now = datetime.now(UTC)
        user_agent = request.headers.get("User-Agent")
        machine = is_machine(
            user_agent=user_agent,
            method=request.method,
            click=link.kind is LinkKind.CLICK,
            occurred_at=now,
            delivered_at=self.recent.delivered_at(link.message_id),
            scan_window=self.scan_window,
        )
        evt = engagement.from_link(
            link,
            occurred_at=now,
            user_agent=user_agent,
            client_ip=request.remote,
            machine=machine,
            annotation=await self.annotation(link),
        )
        await self.publisher.engagement(evt)

    async def annotation(self, link: TrackedLink) -> engagement.Annotation | None:
        """The custom_args and categories of an annotated link's message. Only annotated links pay
        the look-up: the others' events are made from the signed link alone, with no database read.
        A message not found (its email.rendered.meta record not consumed yet, or a message older
        than the tracker's table) gives None: the event goes out without them rather than the
        pixel or the redirect failing."""
        return await self.annotations.of(link.message_id) if link.annotated else None

    async def open(self, request: web.Request) -> web.Response:
        link = await self.verified(request, LinkKind.OPEN, "open")
        await self.record(request, link)
        REQUESTS.labels("open", "ok").inc()
        return web.Response(body=PIXEL, content_type="image/gif", headers=NO_CACHE)

    async def click(self, request: web.Request) -> web.Response:
        link = await self.verified(request, LinkKind.CLICK, "click")
        await self.record(request, link)
        REQUESTS.labels("click", "ok").inc()
        return web.Response(status=302, headers={"Location": link.url, **NO_CACHE})

    async def unsubscribe_page(self, request: web.Request) -> web.Response:
        link = await self.verified(request, LinkKind.UNSUBSCRIBE, "unsubscribe")
        REQUESTS.labels("unsubscribe_page", "ok").inc()
        page = UNSUBSCRIBE_PAGE.format(recipient=html.escape(link.recipient), action=html.escape(request.path))
        return web.Response(text=page, content_type="text/html", headers=NO_CACHE)

    async def unsubscribe(self, request: web.Request) -> web.Response:
        """The page's form, and RFC 8058 one-click (body `List-Unsubscribe=One-Click`)."""
        link = await self.verified(request, LinkKind.UNSUBSCRIBE, "unsubscribe")
        form = await request.post()
        one_click = form.get("List-Unsubscribe") == "One-Click"
        evt = engagement.unsubscribe(
            link, occurred_at=datetime.now(UTC), one_click=one_click, annotation=await self.annotation(link)
        )
        await self.publisher.unsubscribe(evt)
        REQUESTS.labels("unsubscribe", "ok").inc()
        page = UNSUBSCRIBED_PAGE.format(recipient=html.escape(link.recipient))
        return web.Response(text=page, content_type="text/html", headers=NO_CACHE)

    async def feedback_arf(self, request: web.Request) -> web.Response:
        if not feedback_auth.arf_secret_given(request.headers.get("Authorization"), self.feedback.arf_secret):
            REQUESTS.labels("feedback_arf", "unauthorized").inc()
            return web.json_response(
                {"status": "error", "message": "the feedback-loop secret is required (MAILSTREAM_FEEDBACK_ARF_SECRET)"},
                status=401,
                headers={"WWW-Authenticate": 'Bearer realm="feedback", Basic realm="feedback"'},
            )
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        return await self._feedback("arf", lambda raw: [feedback.parse_arf(raw)], body)

    async def feedback_ses(self, request: web.Request) -> web.Response:
        """Only SNS messages whose signature verifies, from an allowed topic: a subscription
        confirmation is logged with its SubscribeURL (the operator confirms it), a notification
        is parsed as an SES complaint."""
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        try:
            message = feedback_auth.sns_message(
                _json_or_none(body),
                cert_url_prefixes=self.feedback.sns_cert_url_prefixes,
                topic_arns=self.feedback.sns_topic_arns,
            )
            await self.feedback.certificates.verify(message)
        except feedback_auth.Refused as exc:
            REQUESTS.labels("feedback_ses", "refused").inc()
            log.warning("SES feedback refused: %s", exc)
            return web.json_response({"status": "error", "message": str(exc)}, status=403)
        except CertUnavailable as exc:
            log.warning("SES feedback not taken: %s", exc)
            return web.json_response({"status": "error", "message": "try again later"}, status=503)
        if message.type != "Notification":
            url = message.doc.get("SubscribeURL")
            log.warning("SNS %s for %s: confirm it at %s", message.type, message.topic_arn, url)
            REQUESTS.labels("feedback_ses", "subscription").inc()
            return web.json_response({"status": "noted"}, status=200)
        return await self._feedback("ses", feedback.parse_ses, body)

    async def _body(self, request: web.Request) -> bytes | web.Response:
        body = await request.content.read(FEEDBACK_LIMIT + 1)
        if len(body) > FEEDBACK_LIMIT:
            return web.json_response({"status": "error", "message": "report too large"}, status=413)
        return body

    async def _feedback(self, kind: str, parse, body: bytes) -> web.Response:
        try:
            complaints = parse(body)
        except feedback.NotAReport as exc:
            REQUESTS.labels(f"feedback_{kind}", "not_a_report").inc()
            return web.json_response({"status": "error", "message": str(exc)}, status=400)
        result = await self.take(complaints)
        REQUESTS.labels(f"feedback_{kind}", "ok").inc()
        return web.json_response(result, status=202)

    async def take(self, complaints: list[feedback.Complaint]) -> dict[str, int]:
        taken = await handlers.take_complaints(complaints, self.messages)
        for report, unsubscribe in taken.events:
            await self.publisher.engagement(report)
            await self.publisher.unsubscribe(unsubscribe)
        return taken.counts

    async def take_arf(self, raw: bytes) -> dict[str, int]:
        """The SMTP intake's entry point."""
        return await self.take([feedback.parse_arf(raw)])


@dataclass(frozen=True)
class FeedbackCredentials:
    """What the feedback-loop endpoints check (feedback_auth.py), from the tracker's settings."""

    arf_secret: str
    sns_topic_arns: tuple[str, ...]
    sns_cert_url_prefixes: tuple[str, ...]
    certificates: SnsCertificates


def _json_or_none(body: bytes):
    try:
        return json.loads(body)
    except ValueError:
        return None


def _safe_target(url: str | None) -> bool:
    return bool(url) and url.lower().startswith(("http://", "https://"))


UNSUBSCRIBE_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><meta name="robots" content="noindex"><title>Unsubscribe</title></head>
<body><h1>Unsubscribe</h1><p>Stop emails like this one to <strong>{recipient}</strong>?</p>
<form method="post" action="{action}"><button type="submit">Unsubscribe</button></form></body></html>
"""
UNSUBSCRIBED_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><meta name="robots" content="noindex"><title>Unsubscribed</title></head>
<body><h1>Unsubscribed</h1><p><strong>{recipient}</strong> will not receive these emails any more.</p></body></html>
"""
