"""The feedback-loop inbound address: an aiosmtpd server taking ARF reports by SMTP."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiosmtpd.smtp import SMTP

from mailstream.tracker.feedback import NotAReport

log = logging.getLogger(__name__)
MAX_REPORT_BYTES = 10 * 1024 * 1024


class FeedbackHandler:
    def __init__(self, *, take: Callable[[bytes], Awaitable[dict[str, int]]]) -> None:
        self.take = take

    async def handle_DATA(self, server, session, envelope) -> str:
        try:
            result = await self.take(envelope.original_content or envelope.content)
        except NotAReport as exc:
            return f"550 5.6.0 Not an ARF feedback report: {exc}"
        except Exception:
            log.exception("taking an ARF report by SMTP failed")
            return "451 4.3.0 Report not taken, try again later"
        log.info("ARF report by SMTP from %s: %s", session.peer, result)
        return "250 2.0.0 Report taken"


async def serve_smtp(handler: FeedbackHandler, host: str, port: int) -> asyncio.AbstractServer:
    loop = asyncio.get_running_loop()
    return await loop.create_server(
        lambda: SMTP(handler, hostname="mailstream-tracker", data_size_limit=MAX_REPORT_BYTES, loop=loop), host, port
    )
