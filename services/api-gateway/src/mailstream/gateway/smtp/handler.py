"""The aiosmtpd handler: recipient limits, then DATA -> one send request per recipient, answered
250 only once PostgreSQL has the rows (in a transaction) and Kafka acknowledged every record."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import asyncpg
from aiokafka import AIOKafkaProducer
from aiosmtpd.smtp import SMTP, Envelope, Session
from prometheus_client import Counter

from mailstream.gateway.adapters import tokens_store
from mailstream.gateway.smtp.auth import AuthMechanisms, Principal, TokenAuthenticator
from mailstream.gateway.smtp.submission import (
    Rejected,
    build_submission,
    check_token,
    foreign_domain,
    from_domain,
    valid_recipient,
)
from mailstream.schemas import encode
from mailstream.schemas.topics import SEND_REQUESTED

log = logging.getLogger("mailstream.gateway.smtp")
MESSAGES = Counter("mailstream_gateway_smtp_messages_total", "SMTP messages answered", ["result"])
RECIPIENTS = Counter("mailstream_gateway_smtp_recipients_total", "Send requests accepted over SMTP")

# (topic, [(key, value), ...]) -> returns once Kafka acknowledged every record, raises otherwise
SendMany = Callable[[str, list[tuple[bytes, bytes]]], Awaitable[None]]


def producer_send_many(producer: AIOKafkaProducer) -> SendMany:
    """SendMany over a started aiokafka producer: enqueue all, then await every ack."""

    async def send_many(topic: str, records: list[tuple[bytes, bytes]]) -> None:
        futures = [await producer.send(topic, value, key=key) for key, value in records]
        await asyncio.gather(*futures)

    return send_many


class PublishFailed(Exception):
    """Kafka did not acknowledge every record: the transaction rolls back, the client retries."""


class SubmissionHandler(AuthMechanisms):
    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        send_many: SendMany,
        authenticator: TokenAuthenticator,
        max_recipients: int,
        verified_domains_only: bool = False,
    ) -> None:
        self.pool, self.send_many, self.authenticator = pool, send_many, authenticator
        self.max_recipients, self.verified_domains_only = max_recipients, verified_domains_only

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if len(envelope.rcpt_tos) >= self.max_recipients:
            return f"452 4.5.3 Too many recipients: at most {self.max_recipients} per message"
        if not valid_recipient(address):
            return f"553 5.1.3 Invalid recipient address {address[:200]!r}"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        principal = session.auth_data
        if not isinstance(principal, Principal):  # auth_required makes this unreachable
            return "530 5.7.0 Authentication required"
        try:
            reply = await self.accept(principal, envelope)
            MESSAGES.labels("accepted").inc()
            return reply
        except Rejected as exc:
            MESSAGES.labels("rejected").inc()
            return exc.reply
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            MESSAGES.labels("unavailable").inc()
            log.warning("smtp submission: database error", extra={"fields": {"error": repr(exc)}})
            return "451 4.3.0 The database is unavailable; the message was not accepted, retry later"
        except PublishFailed as exc:
            MESSAGES.labels("unavailable").inc()
            log.warning("smtp submission: kafka error", extra={"fields": {"error": repr(exc.__cause__)}})
            return "451 4.3.0 Kafka did not acknowledge the message; it was not accepted, retry later"

    async def accept(self, principal: Principal, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        from_header, domain = from_domain(raw)
        async with self.pool.acquire() as conn:
            found, domain_ok = await tokens_store.token_and_domain(
                conn, principal.token_id, domain, verified_only=self.verified_domains_only
            )
            token = check_token(principal, found)
            if not domain_ok:
                raise foreign_domain(domain)
            now = datetime.now(UTC)
            submission = build_submission(token, list(envelope.rcpt_tos), raw, from_header, now)
            async with conn.transaction():
                await tokens_store.record_submission(
                    conn,
                    account_id=token.account_id,
                    requests=submission.rows,
                    requested_at=now,
                    create_contacts=token.create_contact,
                )
                # Every record batched, then all acks awaited (acks=all, idempotent producer);
                # a failure rolls the rows back and the client is told to retry.
                records = [(e.to.lower().encode(), encode(e)) for e in submission.events]
                try:
                    await self.send_many(SEND_REQUESTED.name, records)
                except Exception as exc:
                    raise PublishFailed() from exc
        RECIPIENTS.inc(len(submission.events))
        return submission.reply()
