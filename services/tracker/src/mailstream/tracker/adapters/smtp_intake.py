"""The tracker's inbound SMTP address (aiosmtpd), one listener for two kinds of mail:

    RCPT TO b-<token>@<return-path domain>   a message's VERP return path: a DSN (late bounce).
                                             A token that does not verify -> 550 (forged).
    RCPT TO anything else                    the feedback-loop address: an ARF report, taken only
                                             from the configured source networks (else 550).

Mail to a return path is always taken (250) once read, bounce or not: a DSN about a DSN is
never sent back, and what is not a bounce is dropped with the reason logged (late_bounces.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiosmtpd.smtp import SMTP

from mailstream.schemas.return_paths import PREFIX, ReturnPaths
from mailstream.tracker.feedback import NotAReport
from mailstream.tracker.feedback_auth import source_allowed

log = logging.getLogger(__name__)
MAX_REPORT_BYTES = 10 * 1024 * 1024


class InboundHandler:
    def __init__(
        self,
        *,
        take_arf: Callable[[bytes], Awaitable[dict[str, int]]],
        take_dsn: Callable[[str, bytes], Awaitable[object]] | None = None,
        return_paths: ReturnPaths | None = None,
        report_sources: tuple[str, ...] = (),
    ) -> None:
        self.take_arf, self.take_dsn, self.return_paths = take_arf, take_dsn, return_paths
        self.report_sources = report_sources

    async def handle_RCPT(self, server, session, envelope, address: str, rcpt_options) -> str:
        local = address.rpartition("@")[0].lower()
        if local.startswith(PREFIX) and self.take_dsn is not None and self.return_paths is not None:
            message_id = self.return_paths.message_id(address)
            if message_id is None:
                log.info("RCPT to a forged or unknown return path %r from %s refused", address, session.peer)
                return "550 5.1.1 No such return path"
            envelope.rcpt_tos.append(address)
            _return_paths(envelope)[address] = message_id
            return "250 2.1.5 OK"
        if _return_paths(envelope):
            return "452 4.5.3 Send feedback reports and bounces in separate messages"
        if not source_allowed(session.peer[0] if session.peer else "", self.report_sources):
            log.info("RCPT of a feedback report from %s refused: not a configured source", session.peer)
            return "550 5.7.1 Feedback reports are taken only from configured sources"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope) -> str:
        raw = envelope.original_content or envelope.content
        if paths := _return_paths(envelope):
            try:
                for message_id in dict.fromkeys(paths.values()):
                    await self.take_dsn(message_id, raw)
            except Exception:
                log.exception("taking a DSN by SMTP failed")
                return "451 4.3.0 Not taken, try again later"
            return "250 2.0.0 Taken"
        try:
            result = await self.take_arf(raw)
        except NotAReport as exc:
            return f"550 5.6.0 Not an ARF feedback report: {exc}"
        except Exception:
            log.exception("taking an ARF report by SMTP failed")
            return "451 4.3.0 Report not taken, try again later"
        log.info("ARF report by SMTP from %s: %s", session.peer, result)
        return "250 2.0.0 Report taken"


def _return_paths(envelope) -> dict[str, str]:
    """The envelope's return-path recipients -> their message ids (reset with each transaction)."""
    if not hasattr(envelope, "return_paths"):
        envelope.return_paths = {}
    return envelope.return_paths


async def serve_smtp(handler: InboundHandler, host: str, port: int) -> asyncio.AbstractServer:
    loop = asyncio.get_running_loop()
    return await loop.create_server(
        lambda: SMTP(handler, hostname="mailstream-tracker", data_size_limit=MAX_REPORT_BYTES, loop=loop), host, port
    )
