"""Automation trigger rules of the caller's account (docs/automation.md): records on the account's
own Kafka topic become sends of an email saved for automation (the trigger process runs them).

POST   /mailstream/v1/triggers                  201, the rule (enabled unless enabled=false)
GET    /mailstream/v1/triggers
GET    /mailstream/v1/triggers/{id}
PATCH  /mailstream/v1/triggers/{id}             the fields given; the rule is checked whole again
DELETE /mailstream/v1/triggers/{id}             204
POST   /mailstream/v1/triggers/{id}/pause       stops reading; its consumer group keeps its offsets
POST   /mailstream/v1/triggers/{id}/resume      reads on from where it stopped
GET    /mailstream/v1/triggers/{id}/statuses    the statuses of its sends (paged by statusId)
GET    /mailstream/v1/triggers/{id}/stats       its sends counted by status and sendResult, and the
                                                tracker's statistics of them (GET /mailstream/v1/stats?triggerId=)
"""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from mailstream.gateway.adapters import emails, stats
from mailstream.gateway.adapters import triggers_store as store
from mailstream.gateway.deps import Account, Deps
from mailstream.gateway.errors import invalid, not_found
from mailstream.gateway.trigger_models import (
    TriggerCreate,
    TriggerFields,
    TriggerPage,
    TriggerStatsView,
    TriggerStatusPage,
    TriggerView,
    trigger_view,
)
from mailstream.gateway.triggers.rule import RuleError, TriggerRule, parse_conditions, validate
from mailstream.gateway.views import stats_view, status_view

BASE = "/mailstream/v1/triggers"
router = APIRouter(tags=["Automation triggers"])


def _id(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise not_found(f"Trigger {value}") from None


def _schema_text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value)


def _merged(rule: TriggerRule, body: TriggerFields) -> TriggerRule:
    given = body.model_fields_set
    changes: dict[str, Any] = {}
    simple = {
        "name": "name",
        "sourceTopic": "source_topic",
        "recordFormat": "record_format",
        "schemaRegistryUrl": "schema_registry_url",
        "emailId": "email_id",
        "recipientField": "recipient_field",
        "contactProperties": "contact_properties",
        "customProperties": "custom_properties",
        "sendIdTemplate": "send_id_template",
        "enabled": "enabled",
    }
    for api, column in simple.items():
        if api in given:
            value = getattr(body, api)
            if value is None and api not in ("schemaRegistryUrl",):
                continue  # null leaves the field as it is, except for the optional ones
            changes[column] = value
    if "avroSchema" in given:
        changes["avro_schema"] = _schema_text(body.avroSchema)
    if "filter" in given:
        try:
            changes["conditions"] = parse_conditions(body.filter or [])
        except RuleError as exc:
            raise invalid(exc.field, exc.message) from None
    return replace(rule, **changes)


async def _checked(deps: Deps, rule: TriggerRule) -> TriggerRule:
    try:
        validate(rule)
        allowed = deps.triggers_allowed
        override = await store.topic_prefixes(deps.pool, rule.account_id)
        allowed.check(rule, allowed.topic_prefixes_for(rule.account_id, override))
    except RuleError as exc:
        raise invalid(exc.field, exc.message) from None
    email = await emails.get_email(deps.pool, rule.account_id, rule.email_id)
    if email is None:
        raise invalid("emailId", f"email {rule.email_id} does not exist in this account")
    if not email.automation:
        raise invalid(
            "emailId",
            f"email {rule.email_id} is not saved for automation: "
            f"POST /mailstream/v1/emails/{rule.email_id}/save-for-automation (a draft; clone a published one)",
        )
    return rule


async def _row(deps: Deps, account: int, trigger_id: str) -> dict[str, Any]:
    row = await store.get(deps.pool, account, _id(trigger_id))
    if row is None:
        raise not_found(f"Trigger {trigger_id}")
    return row


@router.post(BASE, status_code=201)
async def create_trigger(body: TriggerCreate, account: Account, deps: Deps) -> TriggerView:
    """A new rule; the trigger process starts reading its topic from the beginning within a second."""
    empty = TriggerRule(
        id=str(uuid.uuid4()),
        account_id=account,
        source_topic=body.sourceTopic,
        record_format=body.recordFormat,
        email_id=body.emailId,
        recipient_field=body.recipientField,
        send_id_template=body.sendIdTemplate,
    )
    rule = await _checked(deps, _merged(empty, body))
    return trigger_view(await store.create(deps.pool, rule))


@router.get(BASE)
async def list_triggers(account: Account, deps: Deps) -> TriggerPage:
    return TriggerPage(results=[trigger_view(r) for r in await store.list_all(deps.pool, account)])


@router.get(BASE + "/{trigger_id}")
async def get_trigger(trigger_id: str, account: Account, deps: Deps) -> TriggerView:
    return trigger_view(await _row(deps, account, trigger_id))


@router.patch(BASE + "/{trigger_id}")
async def update_trigger(trigger_id: str, body: TriggerFields, account: Account, deps: Deps) -> TriggerView:
    """Changes the fields given; the trigger process restarts the rule's consumer (same group, same offsets)."""
    rule = await _checked(deps, _merged(store.rule_of(await _row(deps, account, trigger_id)), body))
    row = await store.replace(deps.pool, rule)
    if row is None:
        raise not_found(f"Trigger {trigger_id}")
    return trigger_view(row)


@router.delete(BASE + "/{trigger_id}", status_code=204)
async def delete_trigger(trigger_id: str, account: Account, deps: Deps) -> Response:
    if not await store.delete(deps.pool, account, _id(trigger_id)):
        raise not_found(f"Trigger {trigger_id}")
    return Response(status_code=204)


@router.post(BASE + "/{trigger_id}/pause")
async def pause_trigger(trigger_id: str, account: Account, deps: Deps) -> TriggerView:
    """Stops reading after the batch in hand; the committed position stays (resume reads on from it)."""
    row = await store.set_enabled(deps.pool, account, _id(trigger_id), False)
    if row is None:
        raise not_found(f"Trigger {trigger_id}")
    return trigger_view(row)


@router.post(BASE + "/{trigger_id}/resume")
async def resume_trigger(trigger_id: str, account: Account, deps: Deps) -> TriggerView:
    row = await store.set_enabled(deps.pool, account, _id(trigger_id), True)
    if row is None:
        raise not_found(f"Trigger {trigger_id}")
    return trigger_view(row)


@router.get(BASE + "/{trigger_id}/statuses", response_model_exclude_none=True)
async def trigger_statuses(
    request: Request,
    trigger_id: str,
    account: Account,
    deps: Deps,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    after: Annotated[str | None, Query(max_length=36)] = None,
) -> TriggerStatusPage:
    """The statuses of the sends the rule made, by statusId; `paging.next.after` is the next page's cursor."""
    await _row(deps, account, trigger_id)
    if after is not None:
        try:
            after = str(uuid.UUID(after))
        except ValueError:
            raise invalid("after", "a statusId from paging.next.after") from None
    rows = await store.statuses(deps.pool, account, _id(trigger_id), after=after, limit=limit + 1)
    page: dict[str, Any] = {"results": [status_view(r) for r in rows[:limit]]}
    if len(rows) > limit:
        cursor = rows[limit - 1]["status_id"]
        page["paging"] = {"next": {"after": cursor, "link": str(request.url.include_query_params(after=cursor))}}
    return TriggerStatusPage(**page)


@router.get(BASE + "/{trigger_id}/stats")
async def trigger_stats(trigger_id: str, account: Account, deps: Deps) -> TriggerStatsView:
    """The rule's sends by status and sendResult (SENT, PREVIOUSLY_BOUNCED, ...), and the tracker's
    statistics of them (sent, delivered, bounced, opens, clicks, unsubscribes, ...)."""
    await _row(deps, account, trigger_id)
    counts = await store.outcome_counts(deps.pool, account, _id(trigger_id))
    outcomes = [{"status": c["status"], "sendResult": c["send_result"], "count": c["n"]} for c in counts]
    outcomes.sort(key=lambda o: (o["status"], o["sendResult"] or ""))
    row = await stats.stats_row(deps.pool, account, "trigger", _id(trigger_id))
    return TriggerStatsView(
        triggerId=_id(trigger_id),
        requested=sum(c["n"] for c in counts),
        outcomes=outcomes,
        statistics=stats_view("trigger", _id(trigger_id), row),
    )
