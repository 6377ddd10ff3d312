"""SendGrid's v3 Mail Send (`POST /v3/mail/send`): point a SendGrid client at the gateway and
change nothing else. Its answers and errors are SendGrid's ({"errors": [{message, field, help}]}),
not the HubSpot shape of the rest of the API; what is supported: docs/sendgrid.md."""

from __future__ import annotations

import logging
from email.utils import parseaddr
from typing import Any

import asyncpg
import orjson
from aiokafka.errors import KafkaError
from fastapi import APIRouter, Request, Response
from prometheus_client import Counter

from mailstream.core.db import DATABASE_DOWN
from mailstream.gateway import scopes
from mailstream.gateway.adapters import batches as batch_store
from mailstream.gateway.adapters import emails
from mailstream.gateway.deps import Deps, allow, grant_for_header
from mailstream.gateway.errors import RATE_LIMIT_STATE, ApiError
from mailstream.gateway.kafka_link import KafkaUnavailable
from mailstream.gateway.sendgrid import batches, mapping
from mailstream.gateway.sendgrid.errors import SendGridError, bad_request, error, response
from mailstream.gateway.sendgrid.request import Address, MailSend, parse
from mailstream.gateway.sendgrid.templates import TemplateFailed, compile_version

log = logging.getLogger("mailstream.gateway.sendgrid")
router = APIRouter()
PERSONALIZATIONS = Counter(
    "mailstream_gateway_sendgrid_personalizations_total", "Personalizations accepted on /v3/mail/send"
)
IDEMPOTENCY_HEADERS = ("idempotency-key", "x-idempotency-key")
AUTH_MESSAGES = {
    401: "The provided authorization grant is invalid, expired, or revoked",
    403: "access forbidden",
}
ERRORS_SCHEMA = {
    "type": "object",
    "properties": {
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "message": {"type": "string"},
                    "field": {"type": ["string", "null"]},
                    "help": {"type": ["string", "null"]},
                },
            },
        }
    },
}
_ERROR = {"content": {"application/json": {"schema": ERRORS_SCHEMA}}}
RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {
        "description": "Accepted: Kafka has every personalization's send; X-Message-Id names the request",
        "headers": {"X-Message-Id": {"schema": {"type": "string"}, "description": "The request's id"}},
    },
    200: {"description": "mail_settings.sandbox_mode: the request is valid; nothing was sent"},
    400: {"description": "Invalid or unsupported field (errors[].field names it)", **_ERROR},
    401: {"description": "Missing or invalid API key", **_ERROR},
    403: {"description": "The API key lacks the send scope", **_ERROR},
    413: {"description": "The request (30 MiB) or a message (5 MiB) is too large", **_ERROR},
    429: {"description": "The API key's request limit is reached", **_ERROR},
    503: {"description": "PostgreSQL or Kafka unavailable: nothing was sent", **_ERROR},
}
OPENAPI_BODY = {
    "requestBody": {
        "required": True,
        "description": "SendGrid's v3 Mail Send body (docs/sendgrid.md)",
        "content": {"application/json": {"schema": {"type": "object", "required": ["personalizations", "from"]}}},
    }
}
KAFKA_DOWN = (KafkaError, KafkaUnavailable, TimeoutError)  # before DATABASE_DOWN: a Kafka timeout is one too


@router.post(
    "/v3/mail/send",
    tags=["sendgrid"],
    status_code=202,
    response_class=Response,
    responses=RESPONSES,
    openapi_extra=OPENAPI_BODY,
)
async def mail_send(request: Request, deps: Deps) -> Response:
    """SendGrid's Mail Send: one message per personalization, one send per recipient of it,
    answered 202 only once Kafka acknowledged every one of them."""
    try:
        return await _mail_send(request, deps)
    except SendGridError as exc:
        return response(exc)
    except KAFKA_DOWN as exc:
        log.warning("kafka unavailable", extra={"fields": {"error": repr(exc)}})
        return _unavailable("Kafka did not acknowledge the sends: nothing was sent; retry later")
    except (*DATABASE_DOWN, asyncpg.PostgresConnectionError) as exc:
        log.warning("database unavailable", extra={"fields": {"error": repr(exc)}})
        return _unavailable("The database is unavailable: nothing was sent; retry later")
    except asyncpg.DataError as exc:
        return response(bad_request(None, f"invalid input: {exc}"))


def _unavailable(message: str) -> Response:
    return response(SendGridError(503, [error(None, message)], headers={"Retry-After": "1"}))


async def _mail_send(request: Request, deps: Deps) -> Response:
    account_id = await caller(request, deps)
    mail = parse(await _body(request))
    if mail.batch_id is not None and not (
        batches.well_formed(mail.batch_id) and await batch_store.exists(deps.pool, account_id, mail.batch_id)
    ):
        raise batches.invalid("batch_id")
    template = await _template(deps, account_id, mail) if mail.template_id is not None else None
    key = next((v for h in IDEMPOTENCY_HEADERS if (v := request.headers.get(h))), None)
    x_message_id = mapping.message_id_of(account_id, key)
    cmds = mapping.commands(
        mail, x_message_id=x_message_id, template=template, require_sending_domain=deps.require_sending_domain
    )
    if mail.sandbox:  # validated, built, not sent: SendGrid answers 200 in sandbox mode
        return Response(status_code=200)
    assert deps.acceptor is not None
    await deps.acceptor.send_many(account_id, cmds)
    PERSONALIZATIONS.inc(len(mail.personalizations))
    return Response(status_code=202, headers={"X-Message-Id": x_message_id})


async def caller(request: Request, deps: Deps) -> int:
    """The caller's account, by a mailstream API key with the send scope; errors in SendGrid's shape."""
    try:
        grant = await grant_for_header(deps, request.headers.get("authorization", ""))
        setattr(request.state, RATE_LIMIT_STATE, allow(deps, grant, scopes.SEND))
    except ApiError as exc:
        message = AUTH_MESSAGES.get(exc.status, exc.message)
        raise SendGridError(exc.status, [error(None, message)], headers=exc.headers) from exc
    return grant.account_id


async def _body(request: Request) -> Any:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > mapping.MAX_BODY_BYTES:
        raise mapping.too_large(f"more than {mapping.MAX_BODY_BYTES} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > mapping.MAX_BODY_BYTES:
            raise mapping.too_large(f"more than {mapping.MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    try:
        return orjson.loads(b"".join(chunks))
    except orjson.JSONDecodeError as exc:
        raise bad_request(None, f"The request body is not valid JSON: {exc}") from exc


async def _template(deps: Deps, account_id: int, mail: MailSend) -> mapping.Template:
    """The email template_id names, if it may be sent this way: TRANSACTIONAL (the message goes
    whole, with no unsubscribe link) and converted to the single-send API, as the HubSpot API asks."""
    assert mail.template_id is not None
    email = await emails.get_email(deps.pool, account_id, mail.template_id)
    where = "template_id"
    if email is None:
        raise bad_request(where, f"no email {mail.template_id} in this account")
    if email.state == "ARCHIVED":
        raise bad_request(where, f"email {email.id} is archived")
    if not email.single_send_api:
        raise bad_request(where, f"email {email.id} is not converted to the single-send API")
    if email.subscription_type != "TRANSACTIONAL":
        raise bad_request(where, f"email {email.id} is {email.subscription_type}: only TRANSACTIONAL emails")
    try:
        compiled = compile_version(email.id, email.current_version, email.subject, email.html, email.text_body)
    except TemplateFailed as exc:
        raise bad_request(where, str(exc)) from exc
    return mapping.Template(
        email_id=email.id,
        version=email.current_version,
        compiled=compiled,
        reply_to=tuple(Address(addr, name or None) for name, addr in map(parseaddr, email.reply_to or ())),
    )
