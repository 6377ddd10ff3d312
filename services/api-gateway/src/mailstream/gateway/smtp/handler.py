"""The aiosmtpd handler: recipient limits, then DATA -> one send request per recipient, answered
250 only once PostgreSQL has the rows (in a transaction) and Kafka acknowledged every record."""

from __future__ import annotations

import logging

import asyncpg
from aiokafka.errors import KafkaError
from aiosmtpd.smtp import SMTP, Envelope, Session
from prometheus_client import Counter

from mailstream.core.db import DATABASE_DOWN
from mailstream.gateway.adapters import tokens_store
from mailstream.gateway.handlers import Acceptor, Prepared
from mailstream.gateway.kafka_link import KafkaUnavailable
from mailstream.gateway.smtp.auth import AuthMechanisms, Principal, TokenAuthenticator
from mailstream.gateway.smtp.submission import (
    Rejected,
    build_submission,
    check_token,
    foreign_domain,
    from_domain,
    valid_recipient,
)

log = logging.getLogger("mailstream.gateway.smtp")
MESSAGES = Counter("mailstream_gateway_smtp_messages_total", "SMTP messages answered", ["result"])
RECIPIENTS = Counter("mailstream_gateway_smtp_recipients_total", "Send requests accepted over SMTP")
KAFKA_DOWN = (KafkaError, KafkaUnavailable, TimeoutError)


class SubmissionHandler(AuthMechanisms):
    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        acceptor: Acceptor,
        authenticator: TokenAuthenticator,
        max_recipients: int,
        verified_domains_only: bool = False,
    ) -> None:
        self.pool, self.acceptor, self.authenticator = pool, acceptor, authenticator
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
        except KAFKA_DOWN as exc:  # before DATABASE_DOWN: a Kafka timeout is a TimeoutError too
            MESSAGES.labels("unavailable").inc()
            log.warning("smtp submission: kafka error", extra={"fields": {"error": repr(exc)}})
            return "451 4.3.0 Kafka did not acknowledge the message; it was not accepted, retry later"
        except (*DATABASE_DOWN, asyncpg.PostgresError) as exc:
            MESSAGES.labels("unavailable").inc()
            log.warning("smtp submission: database error", extra={"fields": {"error": repr(exc)}})
            return "451 4.3.0 The database is unavailable; the message was not accepted, retry later"

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
        submission = build_submission(token, list(envelope.rcpt_tos), raw, from_header, self.acceptor.clock())
        # Every recipient's row and record in the gateway's next batch: all of them or none, and
        # 250 only once Kafka acknowledged every record (acks=all, idempotent producer).
        contact = {} if token.create_contact else None
        await self.acceptor.submit([Prepared(row=row, contact=contact, event=e) for row, e in submission.requests])
        RECIPIENTS.inc(len(submission.events))
        return submission.reply()
