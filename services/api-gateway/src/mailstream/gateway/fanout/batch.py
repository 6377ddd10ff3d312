"""One batch of a one-off send's fan-out, in one transaction that holds the send's row lock:
the next page of its audience, each recipient decided with the single send's rules
(handlers.decide: transactional bypass of subscription/quarantine/double opt-in, suppressions,
sending domains), their rows in send_requests, their SendRequested records (acknowledged by
Kafka before the commit) and the cursor past them.

Each recipient's sendId is `oneoff-<id>-<address>`, so its status and message ids are fixed: a
batch fanned out again after a crash (Kafka had the records, the commit was lost) publishes the
same message ids, which the sender delivers once; a batch whose rows were committed is never
fanned out again (the cursor moved in the same commit).
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

from mailstream.gateway.adapters import accepting
from mailstream.gateway.adapters import one_off_sends as store
from mailstream.gateway.adapters.accepting import EmailFacts
from mailstream.gateway.handlers import Facts, Prepared, SendCommand, decide
from mailstream.gateway.one_off import recipient_send_id
from mailstream.schemas import encode
from mailstream.schemas.topics import SEND_REQUESTED

PublishAll = Callable[[Iterable[tuple[str, bytes, bytes]]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class BatchDone:
    one_off_send_id: str
    recipients: int
    accepted: int
    skipped: int
    finished: bool


def decide_recipients(
    row: dict, addresses: list[str], facts: Facts, now: datetime, *, require_sending_domain: bool
) -> list[Prepared]:
    """Each address's send, decided like a one-off send of the email to that one contact."""
    one_off_send_id = str(row["id"])
    decided = []
    for address in addresses:
        cmd = SendCommand(
            email_id=row["email_id"],
            to=address,
            require_single_send_api=False,
            send_id=recipient_send_id(one_off_send_id, address),
            custom_properties=row["custom_properties"],
            require_sending_domain=require_sending_domain,
        )
        prepared = decide(row["account_id"], cmd, facts, now)
        if prepared.event is not None:
            prepared = dataclasses.replace(
                prepared, event=dataclasses.replace(prepared.event, one_off_send_id=one_off_send_id)
            )
        decided.append(prepared)
    return decided


async def fan_out_batch(
    pool: asyncpg.Pool,
    publish_all: PublishAll,
    *,
    batch_size: int,
    require_sending_domain: bool,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> BatchDone | None:
    """Fans out the next batch of the one-off send whose turn it is; None when none is due."""
    async with pool.acquire() as conn, conn.transaction():
        row = await store.claim_due(conn)
        if row is None:
            return None
        if row["state"] != "SENDING":
            started_at = await conn.fetchval("SELECT now()")
            targeted = await store.count_audience(conn, row, started_at=started_at)
            row = await store.start(conn, row["id"], targeted)
        account_id = row["account_id"]
        addresses = await store.audience_page(conn, row, limit=batch_size)
        email = await store.pinned_email(conn, account_id, row["email_id"], row["email_version"])
        facts = Facts(
            emails={(account_id, row["email_id"]): EmailFacts(**email)} if email else {},
            recipients=await accepting.recipient_facts(conn, [(account_id, a) for a in addresses]),
            domains=await accepting.verified_domains(conn, [account_id]) if require_sending_domain else {},
        )
        decided = decide_recipients(row, addresses, facts, clock(), require_sending_domain=require_sending_domain)
        inserted = await store.insert_recipients(conn, row["id"], [p.row for p in decided])
        records = [
            (SEND_REQUESTED.name, p.event.to.lower().encode(), encode(p.event))
            for p in decided
            if p.event is not None and uuid.UUID(p.row.status_id) in inserted
        ]
        if records:
            # Inside the transaction: if Kafka does not acknowledge, the batch is rolled back whole.
            await publish_all(records)
        finished = len(addresses) < batch_size
        await store.advance(
            conn, row["id"], cursor=addresses[-1] if addresses else None, count=len(addresses), done=finished
        )
    return BatchDone(
        one_off_send_id=str(row["id"]),
        recipients=len(addresses),
        accepted=sum(1 for p in decided if p.event is not None),
        skipped=sum(1 for p in decided if p.event is None),
        finished=finished,
    )
