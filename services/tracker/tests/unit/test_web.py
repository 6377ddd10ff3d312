"""The tracking endpoints' handlers (web.py) on mocked requests, with fakes for the database-backed
ports: which links pay a look-up of their message's custom_args and categories, and what the
events carry; and the look-up's cache (MessageAnnotations) over a fake pool."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from unittest import mock

import pytest
from aiohttp import streams, web
from aiohttp.test_utils import make_mocked_request

from mailstream.schemas import EngagementKind
from mailstream.schemas.links import LinkKind, LinkSigner, TrackedLink
from mailstream.tracker.adapters.messages import MessageAnnotations
from mailstream.tracker.adapters.recent import RecentDeliveries
from mailstream.tracker.engagement import Annotation
from mailstream.tracker.web import Tracking

SIGNER = LinkSigner({"k1": b"a-test-signing-key-0123"})
MESSAGE = str(uuid.UUID(int=42))
ORDER = Annotation({"order": "42"}, ("receipt",))
BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"


class NoDatabase:
    """A port that fails the test if it is asked anything."""

    def __getattr__(self, name):
        raise AssertionError(f"the database was asked ({name}) on the hot path of a link that is not annotated")


class FakeAnnotations:
    def __init__(self, found: dict[str, Annotation]) -> None:
        self.found, self.asked = found, []

    async def of(self, message_id: str) -> Annotation | None:
        self.asked.append(message_id)
        return self.found.get(message_id)


class FakePublisher:
    def __init__(self) -> None:
        self.engagements, self.unsubscribes = [], []

    async def engagement(self, evt) -> None:
        self.engagements.append(evt)

    async def unsubscribe(self, evt) -> None:
        self.unsubscribes.append(evt)


def tracking(annotations) -> tuple[Tracking, FakePublisher]:
    publisher = FakePublisher()
    t = Tracking(
        signer=SIGNER,
        targets=NoDatabase(),  # every link here carries its click target
        recent=RecentDeliveries(),
        publisher=publisher,
        messages=NoDatabase(),
        annotations=annotations,
        scan_window=timedelta(seconds=5),
        feedback=None,
    )
    return t, publisher


def token(kind: LinkKind, *, annotated: bool, url: str | None = None, message_id: str = MESSAGE) -> str:
    return SIGNER.token(TrackedLink(kind, message_id, 1, "jane@example.com", 7, None, url, 3, annotated=annotated))


def get(kind: LinkKind, tok: str) -> web.Request:
    headers = {"User-Agent": BROWSER}
    return make_mocked_request("GET", f"/{kind.value}/{tok}", headers=headers, match_info={"token": tok})


def one_click(tok: str) -> web.Request:
    payload = streams.StreamReader(mock.Mock(_reading_paused=False), 2**16, loop=asyncio.get_running_loop())
    payload.feed_data(b"List-Unsubscribe=One-Click")
    payload.feed_eof()
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    return make_mocked_request("POST", f"/u/{tok}", headers=headers, match_info={"token": tok}, payload=payload)


async def test_opens_and_clicks_of_links_that_are_not_annotated_read_no_database():
    t, published = tracking(NoDatabase())
    pixel = await t.open(get(LinkKind.OPEN, token(LinkKind.OPEN, annotated=False)))
    click = await t.click(get(LinkKind.CLICK, token(LinkKind.CLICK, annotated=False, url="https://shop.example/o")))
    assert pixel.status == 200 and (click.status, click.headers["Location"]) == (302, "https://shop.example/o")
    assert [(e.kind, e.custom_args, e.categories) for e in published.engagements] == [
        (EngagementKind.OPEN, {}, ()),
        (EngagementKind.CLICK, {}, ()),
    ]


async def test_opens_and_clicks_of_an_annotated_link_carry_the_messages_custom_args_and_categories():
    annotations = FakeAnnotations({MESSAGE: ORDER})
    t, published = tracking(annotations)
    await t.open(get(LinkKind.OPEN, token(LinkKind.OPEN, annotated=True)))
    click = await t.click(get(LinkKind.CLICK, token(LinkKind.CLICK, annotated=True, url="https://shop.example/o")))
    assert click.status == 302
    assert [(e.kind, e.custom_args, e.categories, e.email_id) for e in published.engagements] == [
        (EngagementKind.OPEN, {"order": "42"}, ("receipt",), 7),
        (EngagementKind.CLICK, {"order": "42"}, ("receipt",), 7),
    ]
    assert annotations.asked == [MESSAGE, MESSAGE]


async def test_an_annotated_link_whose_message_is_not_found_still_counts_and_redirects():
    t, published = tracking(FakeAnnotations({}))  # its email.rendered.meta not consumed yet
    pixel = await t.open(get(LinkKind.OPEN, token(LinkKind.OPEN, annotated=True)))
    click = await t.click(get(LinkKind.CLICK, token(LinkKind.CLICK, annotated=True, url="https://shop.example/o")))
    assert (pixel.status, click.status) == (200, 302)
    assert [(e.custom_args, e.categories) for e in published.engagements] == [({}, ()), ({}, ())]


async def test_an_unsubscribe_of_an_annotated_link_carries_the_messages_custom_args_and_categories():
    t, published = tracking(FakeAnnotations({MESSAGE: ORDER}))
    page = await t.unsubscribe(one_click(token(LinkKind.UNSUBSCRIBE, annotated=True)))
    assert page.status == 200
    assert [(u.message_id, u.custom_args, u.categories) for u in published.unsubscribes] == [
        (MESSAGE, {"order": "42"}, ("receipt",))
    ]


async def test_an_unsubscribe_of_a_link_that_is_not_annotated_looks_nothing_up():
    t, published = tracking(NoDatabase())
    page = await t.unsubscribe(one_click(token(LinkKind.UNSUBSCRIBE, annotated=False)))
    assert page.status == 200 and [u.custom_args for u in published.unsubscribes] == [{}]


async def test_a_bad_token_is_a_404_and_asks_nothing():
    t, published = tracking(NoDatabase())
    forged = token(LinkKind.OPEN, annotated=True)[:-2] + "AA"
    with pytest.raises(web.HTTPNotFound):
        await t.open(get(LinkKind.OPEN, forged))
    assert published.engagements == []


# --- MessageAnnotations: the cache over tracked_messages --------------------------------------------


class FakePool:
    def __init__(self, rows: dict[uuid.UUID, dict], fail: Exception | None = None) -> None:
        self.rows, self.fail, self.queries = rows, fail, 0

    async def fetchrow(self, query: str, key: uuid.UUID):
        self.queries += 1
        if self.fail is not None:
            raise self.fail
        return self.rows.get(key)


async def test_a_found_message_is_looked_up_once_then_cached():
    pool = FakePool({uuid.UUID(MESSAGE): {"custom_args": '{"order": "42"}', "categories": ["receipt"]}})
    annotations = MessageAnnotations(pool)
    assert await annotations.of(MESSAGE) == ORDER
    assert await annotations.of(MESSAGE) == ORDER
    assert pool.queries == 1


async def test_a_message_not_found_is_asked_again_later():
    pool = FakePool({})
    annotations = MessageAnnotations(pool)
    assert await annotations.of(MESSAGE) is None
    pool.rows[uuid.UUID(MESSAGE)] = {"custom_args": None, "categories": ["receipt"]}  # its meta record came
    assert await annotations.of(MESSAGE) == Annotation({}, ("receipt",))
    assert pool.queries == 2


async def test_a_database_that_does_not_answer_gives_no_annotation_instead_of_an_error():
    annotations = MessageAnnotations(FakePool({}, fail=OSError("connection refused")))
    assert await annotations.of(MESSAGE) is None


async def test_a_message_id_that_is_not_a_uuid_is_not_asked():
    pool = FakePool({})
    assert await MessageAnnotations(pool).of("not-a-uuid") is None
    assert pool.queries == 0
