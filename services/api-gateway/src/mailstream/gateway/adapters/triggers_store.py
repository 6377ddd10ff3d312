"""Trigger rules (gateway-owned `triggers`) and the statuses of the sends they made. Every query of
the API is scoped by account_id; the trigger process reads every account's enabled rules.

send_outcome_statuses is the tracker's view: read here, never written.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg

from mailstream.gateway.adapters.sends import STATUS_SELECT
from mailstream.gateway.triggers.rule import Condition, TriggerRule

COLUMNS = """id::text AS id, account_id, name, source_topic, record_format, avro_schema, schema_registry_url,
    filter, email_id, recipient_field, contact_properties, custom_properties, send_id_template, enabled,
    created_at, updated_at"""
WRITABLE = (
    "name",
    "source_topic",
    "record_format",
    "avro_schema",
    "schema_registry_url",
    "filter",
    "email_id",
    "recipient_field",
    "contact_properties",
    "custom_properties",
    "send_id_template",
    "enabled",
)
JSONB = frozenset({"filter", "contact_properties", "custom_properties"})


def rule_of(row: asyncpg.Record | dict[str, Any]) -> TriggerRule:
    return TriggerRule(
        id=row["id"],
        account_id=row["account_id"],
        name=row["name"],
        source_topic=row["source_topic"],
        record_format=row["record_format"],
        avro_schema=row["avro_schema"],
        schema_registry_url=row["schema_registry_url"],
        conditions=tuple(Condition(c["field"], c["op"], c.get("value")) for c in json.loads(row["filter"])),
        email_id=row["email_id"],
        recipient_field=row["recipient_field"],
        contact_properties=json.loads(row["contact_properties"]),
        custom_properties=json.loads(row["custom_properties"]),
        send_id_template=row["send_id_template"],
        enabled=row["enabled"],
        version=row["updated_at"].isoformat(),
    )


def columns_of(rule: TriggerRule) -> dict[str, Any]:
    return {
        "name": rule.name,
        "source_topic": rule.source_topic,
        "record_format": rule.record_format,
        "avro_schema": rule.avro_schema,
        "schema_registry_url": rule.schema_registry_url,
        "filter": json.dumps([{"field": c.path, "op": c.op, "value": c.value} for c in rule.conditions]),
        "email_id": rule.email_id,
        "recipient_field": rule.recipient_field,
        "contact_properties": json.dumps(rule.contact_properties),
        "custom_properties": json.dumps(rule.custom_properties),
        "send_id_template": rule.send_id_template,
        "enabled": rule.enabled,
    }


async def create(pool: asyncpg.Pool, rule: TriggerRule) -> dict[str, Any]:
    values = columns_of(rule)
    row = await pool.fetchrow(
        f"""INSERT INTO triggers (id, account_id, {", ".join(WRITABLE)})
            VALUES ($1, $2, {", ".join(f"${i}{'::jsonb' if c in JSONB else ''}" for i, c in enumerate(WRITABLE, 3))})
            RETURNING {COLUMNS}""",
        uuid.UUID(rule.id),
        rule.account_id,
        *(values[c] for c in WRITABLE),
    )
    return dict(row)


async def get(pool: asyncpg.Pool, account_id: int, trigger_id: str) -> dict[str, Any] | None:
    row = await pool.fetchrow(
        f"SELECT {COLUMNS} FROM triggers WHERE account_id = $1 AND id = $2", account_id, uuid.UUID(trigger_id)
    )
    return dict(row) if row else None


async def list_all(pool: asyncpg.Pool, account_id: int) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        f"SELECT {COLUMNS} FROM triggers WHERE account_id = $1 ORDER BY created_at, id LIMIT 1000", account_id
    )
    return [dict(r) for r in rows]


async def replace(pool: asyncpg.Pool, rule: TriggerRule) -> dict[str, Any] | None:
    values = columns_of(rule)
    sets = ", ".join(f"{c} = ${i}{'::jsonb' if c in JSONB else ''}" for i, c in enumerate(WRITABLE, 3))
    row = await pool.fetchrow(
        f"""UPDATE triggers SET {sets}, updated_at = clock_timestamp()
            WHERE account_id = $1 AND id = $2 RETURNING {COLUMNS}""",
        rule.account_id,
        uuid.UUID(rule.id),
        *(values[c] for c in WRITABLE),
    )
    return dict(row) if row else None


async def set_enabled(pool: asyncpg.Pool, account_id: int, trigger_id: str, enabled: bool) -> dict[str, Any] | None:
    row = await pool.fetchrow(
        f"""UPDATE triggers SET enabled = $3, updated_at = clock_timestamp()
            WHERE account_id = $1 AND id = $2 RETURNING {COLUMNS}""",
        account_id,
        uuid.UUID(trigger_id),
        enabled,
    )
    return dict(row) if row else None


async def delete(pool: asyncpg.Pool, account_id: int, trigger_id: str) -> bool:
    done = await pool.fetchval(
        "DELETE FROM triggers WHERE account_id = $1 AND id = $2 RETURNING true", account_id, uuid.UUID(trigger_id)
    )
    return bool(done)


async def enabled_rules(pool: asyncpg.Pool) -> list[TriggerRule]:
    """Every account's enabled rules (the trigger process runs one consumer group per rule)."""
    return [rule_of(r) for r in await pool.fetch(f"SELECT {COLUMNS} FROM triggers WHERE enabled ORDER BY id")]


async def statuses(
    pool: asyncpg.Pool, account_id: int, trigger_id: str, *, after: str | None, limit: int
) -> list[dict[str, Any]]:
    """The statuses of the rule's sends, by status id (a cursor), with the tracker's outcome."""
    rows = await pool.fetch(
        f"""{STATUS_SELECT}
            WHERE r.account_id = $1 AND r.trigger_id = $2 AND r.status_id > $3
            ORDER BY r.status_id LIMIT $4""",
        account_id,
        uuid.UUID(trigger_id),
        uuid.UUID(after) if after else uuid.UUID(int=0),
        limit,
    )
    return [dict(r) for r in rows]


async def outcome_counts(pool: asyncpg.Pool, account_id: int, trigger_id: str) -> list[dict[str, Any]]:
    """(status, sendResult, count) over the rule's sends: the gateway's refusals and the tracker's outcomes."""
    rows = await pool.fetch(
        """SELECT CASE WHEN r.send_result IS NOT NULL THEN 'COMPLETE'
                       WHEN r.canceled_at IS NOT NULL THEN 'CANCELED'
                       ELSE coalesce(o.status, 'PENDING') END AS status,
                  coalesce(r.send_result, o.send_result) AS send_result, count(*) AS n
           FROM send_requests r LEFT JOIN send_outcome_statuses o ON o.status_id = r.status_id
           WHERE r.account_id = $1 AND r.trigger_id = $2
           GROUP BY 1, 2""",
        account_id,
        uuid.UUID(trigger_id),
    )
    return [dict(r) for r in rows]


async def topic_prefixes(pool: asyncpg.Pool, account_id: int) -> tuple[str, ...] | None:
    """The account's own trigger topic prefixes (None: the operator's default applies)."""
    prefixes = await pool.fetchval("SELECT trigger_topic_prefixes FROM accounts WHERE id = $1", account_id)
    return None if prefixes is None else tuple(prefixes)


async def topic_prefix_overrides(pool: asyncpg.Pool) -> dict[int, tuple[str, ...]]:
    """Every account that has its own trigger topic prefixes (the trigger process checks its rules against them)."""
    rows = await pool.fetch("SELECT id, trigger_topic_prefixes FROM accounts WHERE trigger_topic_prefixes IS NOT NULL")
    return {r["id"]: tuple(r["trigger_topic_prefixes"]) for r in rows}


async def set_topic_prefixes(pool: asyncpg.Pool, account_id: int, prefixes: tuple[str, ...] | None) -> bool:
    """Sets (None: clears) the account's own trigger topic prefixes; False: no such account."""
    done = await pool.fetchval(
        "UPDATE accounts SET trigger_topic_prefixes = $2 WHERE id = $1 RETURNING true",
        account_id,
        None if prefixes is None else list(prefixes),
    )
    return bool(done)
