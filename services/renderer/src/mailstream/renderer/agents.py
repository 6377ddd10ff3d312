"""email.send.requested -> email.rendered (keyed by sending IP), or a DROPPED outcome."""

from __future__ import annotations

from prometheus_client import Counter

from mailstream.renderer import bootstrap, topics
from mailstream.renderer.app import app
from mailstream.renderer.handlers import render_send
from mailstream.schemas import DecodeError, EmailRendered, SendRequested, dead_lettered, decode, encode

RENDERED = Counter("mailstream_renderer_records_total", "Send requests handled", ["outcome"])


@app.agent(topics.send_requested)
async def render_sends(stream):
    async for event in stream.events():
        try:
            request = decode(event.value, SendRequested)
        except DecodeError as exc:
            await dead_letter(event, str(exc))
            continue
        deps = await bootstrap.deps()
        result = await render_send(request, load_email=deps.emails.load, pools=deps.pools)
        if isinstance(result, EmailRendered):
            await topics.rendered.send(key=result.sending_ip.encode(), value=encode(result))
            RENDERED.labels("rendered").inc()
        else:
            await topics.delivery.send(key=result.message_id.encode(), value=encode(result))
            RENDERED.labels(result.send_result).inc()


async def dead_letter(event, reason: str) -> None:
    msg = event.message
    record = dead_lettered(
        service="renderer",
        topic=msg.topic,
        partition=msg.partition,
        offset=msg.offset,
        key=event.key,
        value=event.value,
        reason=reason,
    )
    await topics.dead_letter.send(key=event.key, value=encode(record))
    RENDERED.labels("dead_lettered").inc()
