"""API key scopes: what each operation needs, and what a key grants. Pure.

Each operation needs one scope, found from its route's path (ROUTE_SCOPES, first match). A key
grants a set of scopes; the keys made before scopes existed grant them all (migration 0016). A
scope may be given by HubSpot's name where HubSpot has one (HUBSPOT_SCOPES): HubSpot's
`transactional-email` covers its single-send and SMTP tokens APIs, so it grants both here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

SEND, EMAILS, TOKENS, CONTACTS, STATS, ADMIN = "send", "emails", "tokens", "contacts", "stats", "admin"
SCOPES: dict[str, str] = {
    SEND: "single sends, one-off sends, send statuses and cancel",
    EMAILS: "emails (templates): create, edit, publish, clone, archive, convert, save for automation, trigger rules",
    TOKENS: "SMTP tokens: create, list, view with statistics, password reset, delete",
    CONTACTS: "contacts and suppressions: upsert, read, list, delete; suppressions add, remove, unbounce, export",
    STATS: "statistics and the email events listing",
    ADMIN: "users, API keys, sending domains and dedicated IPs",
}
ALL_SCOPES = frozenset(SCOPES)
HUBSPOT_SCOPES: dict[str, frozenset[str]] = {
    "transactional-email": frozenset({SEND, TOKENS}),
    "content": frozenset({EMAILS}),
    "crm.objects.contacts.read": frozenset({CONTACTS}),
    "crm.objects.contacts.write": frozenset({CONTACTS}),
}

# (route path pattern, scope): the first that matches the route's path template decides.
ROUTE_SCOPES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), scope)
    for pattern, scope in (
        (r"^/marketing/(v3/transactional|transactional/[0-9-]+)/single-email/", SEND),
        (r"^/marketing/v3/email/send-statuses/", SEND),
        (r"^/mailstream/v1/sends(/|$)", SEND),
        (r"^/mailstream/v1/emails/[^/]+/send$", SEND),
        (r"^/mailstream/v1/one-off", SEND),
        (r"^/v3/mail/send$", SEND),  # SendGrid's Mail Send
        (r"^/v3/(mail/batch|user/scheduled_sends)(/|$)", SEND),  # SendGrid's batches (pause, cancel)
        (r"^/marketing/(v3/transactional|transactional/[0-9-]+)/smtp-tokens", TOKENS),
        (r"^/mailstream/v1/emails(/|$)", EMAILS),
        (r"^/mailstream/v1/triggers(/|$)", EMAILS),  # automation: which emails records send
        (r"^/mailstream/v1/contacts(/|$)", CONTACTS),
        (r"^/crm/v3/objects/contacts(/|$)", CONTACTS),
        (r"^/mailstream/v1/suppressions(/|$)", CONTACTS),
        (r"^/mailstream/v1/stats(/|$)", STATS),
        (r"^/email/public/v1/events(/|$)", STATS),
        (r"^/mailstream/v1/(users|api-keys|sending-domains|ips)(/|$)", ADMIN),
        (r"^/mailstream/v1/webhooks(/|$)", ADMIN),  # where the account's events go, signed with its secrets
    )
)


def scope_of(path: str) -> str:
    """The scope an operation needs, from its route's path (template or concrete); an operation
    no rule names needs `admin`."""
    for pattern, scope in ROUTE_SCOPES:
        if pattern.search(path):
            return scope
    return ADMIN


def parse_scopes(names: Iterable[str]) -> frozenset[str]:
    """Scopes from their names (ours or HubSpot's), or ValueError naming the unknown ones."""
    granted: set[str] = set()
    unknown = []
    for name in names:
        name = name.strip()
        if name in SCOPES:
            granted.add(name)
        elif name in HUBSPOT_SCOPES:
            granted |= HUBSPOT_SCOPES[name]
        elif name:
            unknown.append(name)
    if unknown:
        known = ", ".join([*SCOPES, *HUBSPOT_SCOPES])
        raise ValueError(f"unknown scope(s) {', '.join(unknown)}: use {known}")
    if not granted:
        raise ValueError("a key needs at least one scope")
    return frozenset(granted)


def missing_scopes(needed: str, granted: frozenset[str]) -> list[str]:
    return [] if needed in granted else [needed]
