"""email.send.requested -> email.rendered (keyed by sending IP), or a DROPPED outcome on email.delivery.

Records that cannot be decoded or processed go to the dead-letter topic with the reason (and,
when the send is known, it ends with the matching sendResult); the agent goes on. Transient
database errors are retried with backoff: mail is never dropped because a dependency blinked.
"""

from __future__ import annotations

import asyncio
import logging
import time

from prometheus_client import Counter, Histogram

from mailstream.core.db import DATABASE_DOWN
from mailstream.core.faust_runtime import dead_letter_value
from mailstream.renderer import bootstrap, topics
from mailstream.renderer.app import app
from mailstream.renderer.handlers import Ports, Unprocessable, dropped, render_send
from mailstream.schemas import DecodeError, EmailRendered, SendRequested, SendResult, decode, encode

log = logging.getLogger(__name__)

CONCURRENCY = 16  # actors per process; per-key order is not required, the DB lookups overlap
RENDERED = Counter("mailstream_renderer_records_total", "Send requests handled", ["outcome"])
SECONDS = Histogram("mailstream_renderer_seconds", "Time to turn one send request into its outcome")


@app.agent(topics.send_requested, concurrency=CONCURRENCY)
async def render_sends(stream):
    async for event in stream.events():
        await process(event, (await bootstrap.deps()).ports)


async def process(event, ports: Ports) -> None:
    started = time.perf_counter()
    try:
        request = decode(event.value, SendRequested)
    except DecodeError as exc:
        await dead_letter(event, f"cannot decode SendRequested: {exc}")
        return
    try:
        result = await render_retrying(request, ports)
    except Unprocessable as exc:
        await dead_letter(event, exc.reason)
        result = dropped(request, exc.result, exc.reason)
    except Exception as exc:  # a bug or an input we did not foresee: this send ends, the agent goes on
        log.exception("cannot render message %s", request.message_id)
        reason = f"renderer error: {type(exc).__name__}: {exc}"
        await dead_letter(event, reason)
        result = dropped(request, SendResult.CORRUPT_INPUT, reason)
    if isinstance(result, EmailRendered):
        await topics.rendered.send(key=result.sending_ip.encode(), value=encode(result))
        RENDERED.labels("rendered").inc()
    else:
        await topics.delivery.send(key=result.message_id.encode(), value=encode(result))
        RENDERED.labels(result.send_result).inc()
    SECONDS.observe(time.perf_counter() - started)


async def render_retrying(request: SendRequested, ports: Ports):
    delay = 0.2
    while True:
        try:
            return await render_send(request, ports)
        except DATABASE_DOWN as exc:
            log.warning("transient error rendering %s, retrying in %.1fs: %r", request.message_id, delay, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)


async def dead_letter(event, reason: str) -> None:
    value = dead_letter_value(event, service="renderer", reason=reason)
    await topics.dead_letter.send(key=event.key, value=value)
    RENDERED.labels("dead_lettered").inc()
