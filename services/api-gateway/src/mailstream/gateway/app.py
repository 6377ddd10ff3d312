"""The FastAPI application: routes translate HTTP to handlers and nothing more."""

import uuid
from dataclasses import dataclass
from typing import Annotated, Any

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from fastapi import Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, Counter, generate_latest

from mailstream.core.db import database_reachable
from mailstream.core.kafka import kafka_reachable
from mailstream.gateway import handlers
from mailstream.gateway.adapters import store
from mailstream.gateway.errors import ApiError, install_error_handlers, not_found, unavailable
from mailstream.gateway.models import EmailCreate, SingleSendRequest
from mailstream.schemas import SendRequested, encode
from mailstream.schemas.topics import SEND_REQUESTED

SENDS_ACCEPTED = Counter("mailstream_gateway_sends_total", "Single sends answered", ["result"])


@dataclass
class Dependencies:
    pool: asyncpg.Pool
    producer: AIOKafkaProducer

    async def publish(self, event: SendRequested) -> None:
        # acks=all + idempotent producer: this returns once every in-sync replica has the record.
        await self.producer.send_and_wait(SEND_REQUESTED.name, encode(event), key=event.to.lower().encode())


def create_app(deps: Dependencies) -> FastAPI:
    app = FastAPI(title="mailstream API", version="0.1.0")
    install_error_handlers(app)

    async def account_id(request: Request) -> int:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(
                401,
                "INVALID_AUTHENTICATION",
                "Authentication credentials not found: send 'Authorization: Bearer <API key>'",
            )
        try:
            found = await store.account_for_key(deps.pool, token.strip())
        except (OSError, asyncpg.PostgresError) as exc:
            raise unavailable("The database is unavailable; nothing was done, retry later") from exc
        if found is None:
            raise ApiError(401, "INVALID_AUTHENTICATION", "The API key provided is invalid or revoked")
        return found

    Account = Annotated[int, Depends(account_id)]

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        checks = {"postgres": await database_reachable(deps.pool), "kafka": await kafka_reachable(deps.producer)}
        ok = all(checks.values())
        return JSONResponse({"ready": ok, "checks": checks}, status_code=200 if ok else 503)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.post("/marketing/v3/transactional/single-email/send")
    async def single_send(body: SingleSendRequest, account: Account) -> dict[str, Any]:
        try:
            view = await handlers.single_send(deps.pool, deps.publish, account, body)
        except (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError) as exc:
            raise unavailable("The database is unavailable; the send was not accepted, retry later") from exc
        except (KafkaError, TimeoutError) as exc:
            raise unavailable("Kafka did not acknowledge the send; it was not accepted, retry later") from exc
        SENDS_ACCEPTED.labels(view.get("sendResult", view["status"])).inc()
        return view

    @app.get("/marketing/v3/email/send-statuses/{status_id}")
    async def send_status(status_id: str, account: Account) -> dict[str, Any]:
        try:
            uuid.UUID(status_id)
        except ValueError:
            raise not_found(f"Send status {status_id}") from None
        row = await store.send_status(deps.pool, account, status_id)
        if row is None:
            raise not_found(f"Send status {status_id}")
        return handlers.status_view(row)

    @app.post("/mailstream/v1/emails", status_code=201)
    async def create_email(body: EmailCreate, account: Account) -> dict[str, Any]:
        email = await store.create_email(
            deps.pool,
            account,
            {
                "name": body.name,
                "subject": body.subject,
                "from_name": body.fromName,
                "from_email": body.fromEmail,
                "reply_to": body.replyTo,
                "html": body.html,
                "text": body.text,
                "subscription_type": body.subscriptionType,
                "tracking": body.tracking,
            },
        )
        return email_view(email)

    @app.get("/mailstream/v1/emails/{email_id}")
    async def get_email(email_id: int, account: Account) -> dict[str, Any]:
        email = await store.get_email(deps.pool, account, email_id)
        if email is None:
            raise not_found(f"Email {email_id}")
        return email_view(email)

    @app.post("/mailstream/v1/emails/{email_id}/convert-to-single-send-api")
    async def convert(email_id: int, account: Account) -> dict[str, Any]:
        email = await store.get_email(deps.pool, account, email_id)
        if email is None:
            raise not_found(f"Email {email_id}")
        if email.state != "DRAFT":
            raise ApiError(
                409,
                "CONFLICT",
                f"Email {email_id} is {email.state.lower()}: only drafts can be "
                "converted to the single-send API; clone it and convert the clone",
            )
        await store.set_single_send_api(deps.pool, account, email_id)
        return email_view(await store.get_email(deps.pool, account, email_id))

    return app


def email_view(email: store.EmailRow) -> dict[str, Any]:
    return {
        "emailId": email.id,
        "name": email.name,
        "state": email.state,
        "singleSendApi": email.single_send_api,
        "version": email.current_version,
        "subject": email.subject,
        "fromName": email.from_name,
        "fromEmail": email.from_email,
        "replyTo": email.reply_to,
        "html": email.html,
        "text": email.text_body,
        "subscriptionType": email.subscription_type,
        "tracking": email.tracking,
        "createdAt": handlers.iso(email.created_at),
        "updatedAt": handlers.iso(email.updated_at),
    }
