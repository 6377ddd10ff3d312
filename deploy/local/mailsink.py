"""The development mail sink: an SMTP receiver that records every message it gets.

SMTP on 127.0.0.1:2525 (aiosmtpd); HTTP on 127.0.0.1:8025:
  GET    /api/messages[?rcpt=ADDR][&domain=D][&envelope_only=1]
         -> [{id, peer, mail_from, rcpt_tos, data, data_base64, received_at}] (without the data
         fields when envelope_only; domain keeps messages with a recipient in that domain)
  DELETE /api/messages              -> forget everything
  PUT    /api/mode {"reply": "421 ...", "for_seconds": 30}  -> answer RCPT with that reply for a while
  PUT    /api/mode {"down_for_seconds": 30}  -> the SMTP port is closed (connections refused, open
         sessions dropped) for a while, as if the server were down; what it received is kept
  PUT    /api/rejects/{address} {"reply": "550 5.1.1 no such user"}  -> answer RCPT TO that one
         address with that reply (until DELETE /api/rejects/{address}); other addresses are unaffected
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
        self.rejects: dict[str, str] = {}  # lower-cased address -> the reply its RCPT gets

    async def handle_RCPT(self, server, session: Session, envelope: Envelope, address: str, options):
        if self.forced_reply and time.monotonic() < self.forced_until:
            return self.forced_reply
        if (reply := self.rejects.get(address.lower())) is not None:
            return reply
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


class TrackedSMTP(SMTP):
    """An SMTP session that registers itself, so that the listener can drop it when it goes down."""

    def __init__(self, sessions: set[TrackedSMTP], *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.sessions = sessions
        sessions.add(self)

    def connection_lost(self, exc) -> None:
        self.sessions.discard(self)
        super().connection_lost(exc)


class SmtpListener:
    """The SMTP port, which can go down for a while (refusing and dropping connections) and come back."""

    def __init__(self, handler: RecordingHandler, host: str, port: int) -> None:
        self.handler, self.host, self.port = handler, host, port
        self.server: asyncio.Server | None = None
        self.sessions: set[TrackedSMTP] = set()

    def _session(self) -> TrackedSMTP:
        return TrackedSMTP(
            self.sessions,
            self.handler,
            hostname="mailsink.local",
            data_size_limit=50 * 1024 * 1024,
            enable_SMTPUTF8=True,
            decode_data=False,
        )

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(self._session, host=self.host, port=self.port, reuse_address=True)

    async def down_for(self, seconds: float) -> None:
        if self.server is None:
            return
        self.server.close()
        self.server = None
        for session in list(self.sessions):
            if session.transport is not None:
                session.transport.abort()
        await asyncio.sleep(seconds)
        await self.open()


def http_app(handler: RecordingHandler, listener: SmtpListener) -> web.Application:
    async def list_messages(request: web.Request) -> web.Response:
        rcpt = request.query.get("rcpt")
        domain = request.query.get("domain")
        found = handler.messages
        if rcpt:
            found = [m for m in found if rcpt.lower() in (r.lower() for r in m["rcpt_tos"])]
        if domain:
            suffix = "@" + domain.lower()
            found = [m for m in found if any(r.lower().endswith(suffix) for r in m["rcpt_tos"])]
        if request.query.get("envelope_only"):
            found = [{k: v for k, v in m.items() if k not in ("data", "data_base64")} for m in found]
        return web.json_response(found)

    async def clear(_: web.Request) -> web.Response:
        handler.messages.clear()
        return web.json_response({"deleted": True})

    async def set_mode(request: web.Request) -> web.Response:
        body = await request.json()
        if "down_for_seconds" in body:
            outage = asyncio.create_task(listener.down_for(float(body["down_for_seconds"])))
            outages.add(outage)
            outage.add_done_callback(outages.discard)
            return web.json_response({"down_for_seconds": body["down_for_seconds"]})
        handler.forced_reply = body.get("reply")
        handler.forced_until = time.monotonic() + float(body.get("for_seconds", 0))
        return web.json_response({"reply": handler.forced_reply, "for_seconds": body.get("for_seconds", 0)})

    async def set_reject(request: web.Request) -> web.Response:
        address = request.match_info["address"].lower()
        reply = str((await request.json()).get("reply") or "550 5.1.1 no such user")
        handler.rejects[address] = reply
        return web.json_response({"address": address, "reply": reply})

    async def clear_reject(request: web.Request) -> web.Response:
        handler.rejects.pop(request.match_info["address"].lower(), None)
        return web.json_response({"deleted": True})

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "messages": len(handler.messages)})

    outages: set[asyncio.Task] = set()  # referenced until done
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_get("/api/messages", list_messages)
    app.router.add_delete("/api/messages", clear)
    app.router.add_put("/api/rejects/{address}", set_reject)
    app.router.add_delete("/api/rejects/{address}", clear_reject)
    app.router.add_put("/api/mode", set_mode)
    app.router.add_get("/healthz", healthz)
    return app


async def main(host: str, smtp_port: int, http_port: int) -> None:
    handler = RecordingHandler()
    listener = SmtpListener(handler, host, smtp_port)
    await listener.open()
    runner = web.AppRunner(http_app(handler, listener), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, http_port).start()
    print(f"mailsink: SMTP {host}:{smtp_port}, HTTP {host}:{http_port}", flush=True)
    await asyncio.Event().wait()  # until interrupted


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
