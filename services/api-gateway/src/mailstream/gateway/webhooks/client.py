"""The one adapter that POSTs to webhook endpoints (aiohttp): redirects are not followed, a
response must come within the timeout, and at most max_response_bytes of its body are read (kept
as an excerpt for the delivery log). Every connection's addresses pass the URL policy."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import aiohttp

from mailstream.gateway.webhooks.url_policy import Networks, PolicyResolver, TargetRefused, check_url

USER_AGENT = "mailstream-webhooks/1"
EXCERPT_CHARS = 512


@dataclass(frozen=True, slots=True)
class Attempt:
    ok: bool  # a 2xx answer
    status: int | None
    error: str | None
    duration_ms: int
    excerpt: str = ""


class WebhookClient:
    def __init__(self, *, allowed: Networks = (), timeout_s: float, max_response_bytes: int) -> None:
        self.allowed, self.timeout_s, self.max_response_bytes = allowed, timeout_s, max_response_bytes
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(resolver=PolicyResolver(allowed=self.allowed), limit=200)
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=self.timeout_s),
                headers={"User-Agent": USER_AGENT},
                auto_decompress=False,
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> Attempt:
        started = time.monotonic()

        def took() -> int:
            return int((time.monotonic() - started) * 1000)

        try:
            check_url(url, allowed=self.allowed)
            async with self._client().post(
                url, data=body, headers={"Content-Type": "application/json", **headers}, allow_redirects=False
            ) as reply:
                excerpt = (await reply.content.read(self.max_response_bytes)).decode("utf-8", "replace")
                excerpt = excerpt[:EXCERPT_CHARS]
                if 200 <= reply.status < 300:
                    return Attempt(True, reply.status, None, took(), excerpt)
                if 300 <= reply.status < 400:
                    where = reply.headers.get("Location", "")[:200]
                    error = f"HTTP {reply.status}: redirects are not followed (Location: {where})"
                else:
                    error = f"HTTP {reply.status}"
                return Attempt(False, reply.status, error, took(), excerpt)
        except TargetRefused as exc:
            return Attempt(False, None, f"target refused: {exc}", took())
        except TimeoutError:
            return Attempt(False, None, f"no response within {self.timeout_s:g} s", took())
        except aiohttp.ClientError as exc:
            return Attempt(False, None, f"{type(exc).__name__}: {exc}"[:500], took())
        except (OSError, ValueError) as exc:
            return Attempt(False, None, f"{type(exc).__name__}: {exc}"[:500], took())
        except asyncio.CancelledError:
            raise
