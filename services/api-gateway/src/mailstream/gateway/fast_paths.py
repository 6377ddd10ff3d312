"""The single-send route served in front of FastAPI (a plain ASGI app): the same request model
(pydantic's validation, the same 400s), the same API-key lookup and the same answers and error
shape, without the framework's routing, dependency injection and middleware stack, which cost
about as much CPU per request as accepting the send itself (docs/benchmarks.md). The FastAPI
route stays: it documents the operation in /openapi.json and serves it when this one is off.
"""

from __future__ import annotations

import logging
import uuid

import asyncpg
import orjson
from aiokafka.errors import KafkaError
from pydantic import ValidationError

from mailstream.core.db import DATABASE_DOWN
from mailstream.gateway.deps import Dependencies, account_for_header
from mailstream.gateway.errors import (
    CORRELATION_HEADERS,
    DATABASE_DOWN_MESSAGE,
    KAFKA_DOWN_MESSAGE,
    ApiError,
    error_parts,
    validation_errors,
)
from mailstream.gateway.kafka_link import KafkaUnavailable
from mailstream.gateway.models import SingleSendRequest
from mailstream.gateway.routes.sends import counted, single_send_command
from mailstream.gateway.scopes import SEND

log = logging.getLogger("mailstream.gateway.fast")

SINGLE_SEND_PATHS = frozenset(
    {"/marketing/v3/transactional/single-email/send", "/marketing/transactional/2026-03/single-email/send"}
)
MAX_BODY = 4 * 1024 * 1024  # a single send with its properties; more is refused (413)
_JSON = b"application/json"


class FastPaths:
    def __init__(self, app, deps: Dependencies) -> None:
        self.app, self.deps = app, deps

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in SINGLE_SEND_PATHS:
            await self.app(scope, receive, send)
            return
        correlation_id = str(uuid.uuid4())
        try:
            body, headers = await self._single_send(scope, receive)
            status = 200
        except ApiError as exc:
            status, body, headers = self._error(
                exc.status, exc.category, exc.message, exc.errors, correlation_id, exc.context, exc.headers
            )
        except (KafkaError, KafkaUnavailable) as exc:
            log.warning("kafka unavailable", extra={"fields": {"error": repr(exc), "path": scope["path"]}})
            status, body, headers = self._error(503, "SERVICE_UNAVAILABLE", KAFKA_DOWN_MESSAGE, None, correlation_id)
        except DATABASE_DOWN as exc:
            log.warning("database unavailable", extra={"fields": {"error": repr(exc), "path": scope["path"]}})
            status, body, headers = self._error(503, "SERVICE_UNAVAILABLE", DATABASE_DOWN_MESSAGE, None, correlation_id)
        except asyncpg.DataError as exc:
            message = f"Invalid input: {type(exc).__name__}: {exc}"
            errors = [{"message": str(exc), "in": "body"}]
            status, body, headers = self._error(400, "VALIDATION_ERROR", message, errors, correlation_id)
        except Exception:
            log.exception("single send failed", extra={"fields": {"correlation_id": correlation_id}})
            status, body, headers = self._error(500, "ERROR", "Internal error", None, correlation_id)
        raw_headers = [(b"content-type", _JSON), (b"content-length", str(len(body)).encode())]
        raw_headers += [(name.lower().encode(), correlation_id.encode()) for name in CORRELATION_HEADERS]
        raw_headers += [(k.lower().encode(), v.encode()) for k, v in headers.items() if k not in CORRELATION_HEADERS]
        await send({"type": "http.response.start", "status": status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": body})

    async def _single_send(self, scope, receive) -> tuple[bytes, dict[str, str]]:
        authorization = ""
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value.decode("latin-1")
                break
        account, limit_headers = await account_for_header(self.deps, authorization, SEND)
        raw = await _body(receive)
        try:
            request = SingleSendRequest.model_validate_json(raw or b"null")
        except ValidationError as exc:
            raise validation_errors(exc.errors(include_url=False, include_context=False)) from None
        view = await self.deps.acceptor.send(account, single_send_command(request, self.deps.require_sending_domain))
        return counted(view), limit_headers

    @staticmethod
    def _error(
        status, category, message, errors, correlation_id, context=None, extra_headers=None
    ) -> tuple[int, bytes, dict[str, str]]:
        body, headers = error_parts(status, category, message, errors, correlation_id, context, extra_headers)
        return status, orjson.dumps(body), headers


async def _body(receive) -> bytes:
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ApiError(400, "VALIDATION_ERROR", "The request body did not arrive whole")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise ApiError(413, "PAYLOAD_TOO_LARGE", f"The request body is larger than {MAX_BODY} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)
