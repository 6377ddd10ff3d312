"""Rows to API views (camelCase, ISO-8601 UTC timestamps)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from mailstream.gateway.adapters.emails import EmailRow
from mailstream.gateway.adapters.tokens_store import TokenRow
from mailstream.schemas.counters import COUNTERS


def iso(ts: datetime | None) -> str | None:
    return ts.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z") if ts else None


# The `message` of EmailSendStatusView (HubSpot's newer spec) for the results the gateway decides.
RESULT_MESSAGES = {
    "MISSING_CONTENT": "The emailId is unknown in this account, archived, or not converted to the single-send API",
    "INVALID_TO_ADDRESS": "The recipient address is invalid or a role address (noreply@, postmaster@, ...)",
    "INVALID_FROM_ADDRESS": "The from value is not a valid address or 'Name <address>'",
    "UNCONFIGURED_SENDING_DOMAIN": "The From domain is not a verified sending domain of this account",
    "BLOCKED_ADDRESS": "The account suppressed the address (a MANUAL suppression); nothing was sent",
    "PREVIOUSLY_BOUNCED": "The recipient hard-bounced before; nothing was sent",
    "PREVIOUS_SPAM": "The recipient reported earlier mail as spam; nothing was sent",
    "PREVIOUSLY_UNSUBSCRIBED_PORTAL": "The contact unsubscribed; a MARKETING email is not sent to it",
    "QUARANTINED_ADDRESS": "The contact is quarantined; a MARKETING email is not sent to it",
    "EMAIL_UNCONFIRMED": "The contact's double opt-in is pending; a MARKETING email is not sent to it",
}


def status_view(row: dict[str, Any]) -> dict[str, Any]:
    """EmailSendStatusView from the gateway's request row and the tracker's outcome."""
    view: dict[str, Any] = {"statusId": row["status_id"], "requestedAt": iso(row["requested_at"])}
    if row.get("gateway_result"):
        view.update(
            status="COMPLETE",
            sendResult=row["gateway_result"],
            startedAt=iso(row["requested_at"]),
            completedAt=iso(row["gateway_completed_at"]),
        )
        if row["gateway_result"] in RESULT_MESSAGES:
            view["message"] = RESULT_MESSAGES[row["gateway_result"]]
        return view
    if row.get("canceled_at"):
        view.update(status="CANCELED", completedAt=iso(row["canceled_at"]))
        return view
    view["status"] = row.get("status") or "PENDING"
    for key, column in (("startedAt", "started_at"), ("completedAt", "completed_at")):
        if row.get(column):
            view[key] = iso(row[column])
    if row.get("send_result"):
        view["sendResult"] = row["send_result"]
    if row.get("event_id"):
        view["eventId"] = {"id": row["event_id"], "created": iso(row["event_created"] or row.get("completed_at"))}
    return view


def email_view(email: EmailRow) -> dict[str, Any]:
    return {
        "emailId": email.id,
        "name": email.name,
        "state": email.state,
        "singleSendApi": email.single_send_api,
        "savedForAutomation": email.automation,
        "version": email.current_version,
        "subject": email.subject,
        "fromName": email.from_name,
        "fromEmail": email.from_email,
        "replyTo": list(email.reply_to),
        "html": email.html,
        "text": email.text_body,
        "subscriptionType": email.subscription_type,
        "tracking": email.tracking,
        "createdAt": iso(email.created_at),
        "updatedAt": iso(email.updated_at),
        "publishedAt": iso(email.published_at),
        "archivedAt": iso(email.archived_at),
        "clonedFrom": email.cloned_from,
    }


def contact_view(contact: dict[str, Any], suppressions: list[str]) -> dict[str, Any]:
    return {
        "email": contact["email"],
        "properties": contact["properties"],
        "subscriptionStatus": contact["subscription_status"],
        "quarantined": contact["quarantined"],
        "doubleOptIn": contact["double_opt_in"],
        "bounced": contact["bounced"],
        "spamReported": contact["spam_reported"],
        "suppressions": suppressions,
        "createdAt": iso(contact["created_at"]),
        "updatedAt": iso(contact["updated_at"]),
    }


def rate(numerator: int, delivered: int) -> float:
    return round(numerator / delivered, 4) if delivered else 0.0


def stats_view(scope: str, dimension_id: str, row: dict[str, Any] | None) -> dict[str, Any]:
    counts = {c: (row or {}).get(c) or 0 for c in COUNTERS}
    return {
        "scope": scope,
        "id": dimension_id,
        "sent": counts["sent"],
        "delivered": counts["delivered"],
        "bounced": counts["bounced"],
        "dropped": counts["dropped"],
        "opens": counts["opens_total"],
        "opensUniqueHuman": counts["opens_unique_human"],
        "opensMachine": counts["opens_machine"],
        "clicks": counts["clicks_total"],
        "clicksUniqueHuman": counts["clicks_unique_human"],
        "clicksMachine": counts["clicks_machine"],
        "spamReports": counts["spam_reports"],
        "unsubscribes": counts["unsubscribes"],
        "openRate": rate(counts["opens_unique_human"], counts["delivered"]),
        "clickRate": rate(counts["clicks_unique_human"], counts["delivered"]),
        "updatedAt": iso(row["updated_at"]) if row else None,
    }


def api_key_view(row: dict[str, Any], key: str | None = None) -> dict[str, Any]:
    view = {
        "id": row["id"],
        "name": row["name"],
        "prefix": row["key_prefix"],
        "createdBy": row["created_by"],
        "createdAt": iso(row["created_at"]),
        "revokedAt": iso(row["revoked_at"]),
        "scopes": sorted(row["scopes"]),
        "rateLimit": row["rate_limit"],
    }
    if key is not None:
        view["key"] = key
    return view


def user_view(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "email": row["email"], "name": row["name"], "createdAt": iso(row["created_at"])}


def token_view(token: TokenRow, password: str | None = None) -> dict[str, Any]:
    """SmtpApiTokenView; `password` only on create and password-reset."""
    view: dict[str, Any] = {"id": token.id}
    if password is not None:
        view["password"] = password
    view.update(
        createdBy=token.created_by,
        emailCampaignId=str(token.email_campaign_id),
        createdAt=iso(token.created_at),
        createContact=token.create_contact,
        campaignName=token.campaign_name,
    )
    return view


def token_page_view(tokens: list[TokenRow], limit: int, link: Callable[[str], str]) -> dict[str, Any]:
    """CollectionResponseSmtpApiTokenViewForwardPaging: `tokens` holds up to limit+1 rows."""
    body: dict[str, Any] = {"results": [token_view(t) for t in tokens[:limit]]}
    if len(tokens) > limit:
        after = str(tokens[limit - 1].email_campaign_id)
        body["paging"] = {"next": {"after": after, "link": link(after)}}
    return body


def parse_token_cursor(after: str | None) -> int:
    """The `after` cursor of token_page_view is the last listed token's emailCampaignId; ValueError
    when malformed."""
    if after is None or after == "":
        return 0
    value = int(after)
    if value < 0:
        raise ValueError(after)
    return value


def token_statistics_view(token: TokenRow, stats: dict[str, Any] | None) -> dict[str, Any]:
    """The token's counters from the tracker's `stats_counters` row (zeros before the first event) and rates."""
    s = {c: int((stats or {}).get(c) or 0) for c in COUNTERS}
    return {
        "tokenId": token.id,
        "emailCampaignId": str(token.email_campaign_id),
        "campaignName": token.campaign_name,
        "counters": {
            "sent": s["sent"],
            "delivered": s["delivered"],
            "bounced": s["bounced"],
            "dropped": s["dropped"],
            "opens": s["opens_total"],
            "uniqueOpens": s["opens_unique_human"],
            "machineOpens": s["opens_machine"],
            "clicks": s["clicks_total"],
            "uniqueClicks": s["clicks_unique_human"],
            "machineClicks": s["clicks_machine"],
            "spamReports": s["spam_reports"],
            "unsubscribes": s["unsubscribes"],
        },
        "ratios": {
            "openRate": rate(s["opens_unique_human"], s["delivered"]),
            "clickRate": rate(s["clicks_unique_human"], s["delivered"]),
        },
        "updatedAt": iso(stats.get("updated_at")) if stats else None,
    }
