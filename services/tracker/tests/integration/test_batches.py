"""The batched writes of email.rendered and email.delivery against PostgreSQL: the same rows and
statistics increments as handling the records one by one."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime

import pytest

from mailstream.core.db import create_pool
from mailstream.core.migrations import apply_migrations, migrations_of
from mailstream.schemas import DeliveryAttempted, DeliveryOutcome, EmailRendered, SubscriptionType
from mailstream.tracker import handlers
from mailstream.tracker.adapters import messages
from mailstream.tracker.settings import TrackerSettings

NOW = datetime.now(UTC)


@pytest.fixture
async def pool():
    pool = await create_pool(TrackerSettings.from_env().database_url, max_size=2)
    async with pool.acquire() as conn:
        await apply_migrations(conn, "tracker", migrations_of("mailstream.tracker"))
    yield pool
    await pool.close()


def rendered(account_id: int, **overrides) -> EmailRendered:
    fields = dict(
        message_id=str(uuid.uuid4()),
        status_id=str(uuid.uuid4()),
        account_id=account_id,
        subscription_type=SubscriptionType.TRANSACTIONAL,
        mail_from="a@example.com",
        recipients=("jane@example.com", "cc@example.com"),
        pool="default",
        sending_ip="10.0.0.1",
        sending_domain="example.com",
        mime=b"x",
        requested_at=NOW,
        rendered_at=NOW,
        email_id=7,
        smtp_token_id="tok",
    )
    return EmailRendered(**{**fields, **overrides})


def delivery(msg: EmailRendered, outcome: DeliveryOutcome, **overrides) -> DeliveryAttempted:
    fields = dict(
        event_id=str(uuid.uuid4()),
        message_id=msg.message_id,
        status_id=msg.status_id,
        account_id=msg.account_id,
        recipient="Jane@Example.com",
        outcome=outcome,
        send_result="SENT" if outcome is DeliveryOutcome.DELIVERED else "BOUNCED",
        occurred_at=NOW,
        email_id=msg.email_id,
        started_at=NOW,
    )
    return DeliveryAttempted(**{**fields, **overrides})


def counted(incs) -> dict[str, int]:
    out: dict[str, int] = {}
    for key, delta in incs:
        if key.dimension == "account":
            for name, n in delta.items():
                out[name] = out.get(name, 0) + n
    return out


async def rows(pool, account_id: int):
    return await pool.fetch(
        "SELECT status_id, status, send_result FROM send_outcomes WHERE account_id = $1 ORDER BY status_id",
        account_id,
    )


async def test_a_rendered_batch_writes_each_status_and_message_once_and_counts_first_sightings(pool):
    acct = 800_000_000 + random.randrange(10_000_000)
    a, b = rendered(acct), rendered(acct, smtp_token_id=None)
    assert counted(await handlers.on_rendered_batch([a, b, a], pool)) == {"sent": 2}  # a repeat in the batch
    assert counted(await handlers.on_rendered_batch([a, rendered(acct)], pool)) == {"sent": 1}  # a redelivery
    assert [r["status"] for r in await rows(pool, acct)] == ["PROCESSING"] * 3
    found = await messages.find(pool, a.message_id)
    assert found is not None and found.recipients == a.recipients and found.smtp_token_id == "tok"
    assert (await messages.find(pool, b.message_id)).smtp_token_id is None


async def test_a_delivery_batch_completes_once_never_moves_back_and_suppresses_hard_bounces_only(pool):
    acct = 800_000_000 + random.randrange(10_000_000)
    sent, bounced, soft, late = (rendered(acct) for _ in range(4))
    await handlers.on_rendered_batch([sent, bounced, soft, late], pool)
    batch = [
        delivery(sent, DeliveryOutcome.DEFERRED),
        delivery(sent, DeliveryOutcome.DELIVERED),
        delivery(sent, DeliveryOutcome.BOUNCED),  # after COMPLETE in the same batch: changes nothing
        delivery(bounced, DeliveryOutcome.BOUNCED, smtp_code=550),
        delivery(soft, DeliveryOutcome.BOUNCED, smtp_code=452, bounce_class="mailbox-full", recipient="soft@x.org"),
    ]
    assert counted(await handlers.on_delivery_batch(batch, pool)) == {"delivered": 1, "bounced": 2}
    assert counted(await handlers.on_delivery_batch(batch, pool)) == {}  # redelivered: counted once
    await handlers.on_rendered_batch([sent], pool)  # a late PROCESSING does not move COMPLETE back
    statuses = {str(r["status_id"]): (r["status"], r["send_result"]) for r in await rows(pool, acct)}
    assert statuses[sent.status_id] == ("COMPLETE", "SENT")
    assert statuses[bounced.status_id] == ("COMPLETE", "BOUNCED")
    assert statuses[late.status_id] == ("PROCESSING", None)
    suppressed = await pool.fetch("SELECT address, reason FROM suppressions WHERE account_id = $1", acct)
    assert [(r["address"], r["reason"]) for r in suppressed] == [("jane@example.com", "BOUNCED")]


async def test_a_malformed_id_fails_the_batch_before_anything_is_written(pool):
    acct = 800_000_000 + random.randrange(10_000_000)
    with pytest.raises(ValueError):
        await handlers.on_rendered_batch([rendered(acct), rendered(acct, status_id="not-a-uuid")], pool)
    assert await rows(pool, acct) == []
