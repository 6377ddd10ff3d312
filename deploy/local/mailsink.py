"""The development mail sink: an SMTP receiver that records every message it gets.

SMTP on 127.0.0.1:2525 (aiosmtpd); HTTP on 127.0.0.1:8025:
  GET    /api/messages[?rcpt=ADDR]  -> [{id, peer, mail_from, rcpt_tos, data, data_base64, received_at}]
  DELETE /api/messages              -> forget everything
  PUT    /api/mode {"reply": "421 ...", "for_seconds": 30}  -> answer RCPT with that reply for a while
  GET    /healthz
`peer` is the client's source address, so IP-pool routing is checked for real.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import time
from datetime import UTC, datetime

from aiohttp import web
from aiosmtpd.smtp import SMTP, Envelope, Session


class RecordingHandler:
    def __init__(self) -> None:
        self.messages: list[dict] = []
        self._ids = itertools.count(1)
        self.forced_reply: str | None = None
        self.forced_until = 0.0

    async def handle_RCPT(self, server, session: Session, envelope: Envelope, address: str, options):
        if self.forced_reply and time.monotonic() < self.forced_until:
            return self.forced_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session: Session, envelope: Envelope) -> str:
        data = envelope.original_content or b""
        msg_id = next(self._ids)
        self.messages.append(
            {
                "id": msg_id,
                "peer": session.peer[0] if session.peer else None,
                "mail_from": envelope.mail_from,
                "rcpt_tos": list(envelope.rcpt_tos),
                "data": data.decode("utf-8", "replace"),
                "data_base64": base64.b64encode(data).decode("ascii"),
                "received_at": datetime.now(UTC).isoformat(),
            }
        )
        return f"250 OK queued as sink-{msg_id}"


def http_app(handler: RecordingHandler) -> web.Application:
    async def list_messages(request: web.Request) -> web.Response:
        rcpt = request.query.get("rcpt")
        found = handler.messages
        if rcpt:
            found = [m for m in found if rcpt.lower() in (r.lower() for r in m["rcpt_tos"])]
        return web.json_response(found)

    async def clear(_: web.Request) -> web.Response:
        handler.messages.clear()
        return web.json_response({"deleted": True})

    async def set_mode(request: web.Request) -> web.Response:
        body = await request.json()
        handler.forced_reply = body.get("reply")
        handler.forced_until = time.monotonic() + float(body.get("for_seconds", 0))
        return web.json_response({"reply": handler.forced_reply, "for_seconds": body.get("for_seconds", 0)})

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "messages": len(handler.messages)})

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_get("/api/messages", list_messages)
    app.router.add_delete("/api/messages", clear)
    app.router.add_put("/api/mode", set_mode)
    app.router.add_get("/healthz", healthz)
    return app


async def main(host: str, smtp_port: int, http_port: int) -> None:
    handler = RecordingHandler()
    loop = asyncio.get_running_loop()
    smtp_server = await loop.create_server(
        lambda: SMTP(
            handler,
            hostname="mailsink.local",
            data_size_limit=50 * 1024 * 1024,
            enable_SMTPUTF8=True,
            decode_data=False,
        ),
        host=host,
        port=smtp_port,
        reuse_address=True,
    )
    runner = web.AppRunner(http_app(handler), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, http_port).start()
    print(f"mailsink: SMTP {host}:{smtp_port}, HTTP {host}:{http_port}", flush=True)
    async with smtp_server:
        await smtp_server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--smtp-port", type=int, default=2525)
    parser.add_argument("--http-port", type=int, default=8025)
    args = parser.parse_args()
    try:
        asyncio.run(main(args.host, args.smtp_port, args.http_port))
    except KeyboardInterrupt:
        pass
