"""What the gateway keeps in memory between requests, bounded, with explicit invalidation.

- API keys: key hash -> what it grants (account, scopes, request limit). A revoked key stops
  working at once in this process, within one notification on the others, at most
  `api_key_cache_s` if notifications are lost.
- Emails: (account, email id) -> the facts of its current version (state, version, type, From);
  an edit, publish, archive or convert drops the entry here and, by notification, everywhere.
- Verified sending domains per account (only when the domain check is on): short-lived; a
  verification that changes them, or a deletion, drops the account's entry everywhere.

Changes are announced with PostgreSQL's NOTIFY on one channel; each gateway process LISTENs
(adapters/invalidation.py) and drops what the message names. While no listener runs (starting,
PostgreSQL restarting) nothing new is cached and the caches are cleared when it comes back.
"""

from __future__ import annotations

from cachetools import TTLCache

from mailstream.gateway.adapters.accepting import EmailFacts
from mailstream.gateway.keys import KeyGrant

CHANNEL = "mailstream_gateway_cache"
KEYS, EMAIL, DOMAINS = "keys", "email", "domains"


class Caches:
    def __init__(self, *, api_key_ttl_s: float, email_ttl_s: float = 300.0, domain_ttl_s: float = 5.0) -> None:
        self.api_keys: TTLCache[bytes, KeyGrant] | None = (
            TTLCache(maxsize=10_000, ttl=api_key_ttl_s) if api_key_ttl_s > 0 else None
        )
        self.emails: TTLCache[tuple[int, int], EmailFacts] = TTLCache(maxsize=10_000, ttl=email_ttl_s)
        self.domains: TTLCache[int, frozenset[str]] = TTLCache(maxsize=10_000, ttl=domain_ttl_s)
        self.listening = False  # set by the invalidation listener: only then may entries be kept

    def set_listening(self, listening: bool) -> None:
        self.listening = listening
        self.clear()

    def key_grant(self, key_hash: bytes) -> KeyGrant | None:
        return self.api_keys.get(key_hash) if self.api_keys is not None else None

    def remember_key(self, key_hash: bytes, grant: KeyGrant) -> None:
        if self.api_keys is not None and self.listening:
            self.api_keys[key_hash] = grant

    def remember_email(self, facts: EmailFacts) -> None:
        if self.listening:
            self.emails[(facts.account_id, facts.id)] = facts

    def remember_domains(self, account_id: int, domains: frozenset[str]) -> None:
        if self.listening:
            self.domains[account_id] = domains

    def forget(self, message: str) -> None:
        """Applies one invalidation message: "keys", "email:<id>" or "domains:<account id>"."""
        kind, _, ident = message.partition(":")
        if kind == KEYS and self.api_keys is not None:
            self.api_keys.clear()
        elif kind == EMAIL:
            for key in [k for k in self.emails if str(k[1]) == ident]:
                self.emails.pop(key, None)
        elif kind == DOMAINS and ident.isdigit():
            self.domains.pop(int(ident), None)
        else:
            self.clear()

    def clear(self) -> None:
        if self.api_keys is not None:
            self.api_keys.clear()
        self.emails.clear()
        self.domains.clear()


def email_changed(email_id: int) -> str:
    return f"{EMAIL}:{email_id}"


def domains_changed(account_id: int) -> str:
    return f"{DOMAINS}:{account_id}"
