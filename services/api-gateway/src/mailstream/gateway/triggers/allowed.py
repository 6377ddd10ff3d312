"""The operator's restrictions on trigger rules: which topics an account's rules may read, and which
schema registries the trigger process may fetch from. Pure: no I/O.

    allowed = Allowed.of(settings)                       # a malformed registry prefix stops start-up
    prefixes = allowed.topic_prefixes_for(account_id, override)
    allowed.check(rule, prefixes)                        # raises RuleError naming the field

- Topics: a rule's sourceTopic must start with one of the account's prefixes. The account's own
  list (`mailstream accounts trigger-topics`) replaces MAILSTREAM_TRIGGER_TOPIC_PREFIXES; in either,
  `{account_id}` stands for the account's id (`acct-{account_id}.` -> `acct-42.`). An empty list
  allows any topic that is not mailstream's own (rule.validate refuses those whatever the list).
- Registries: a schemaRegistryUrl must have the scheme, host and port of one of
  MAILSTREAM_TRIGGER_REGISTRY_URLS exactly, and a path under its path (whole segments). An empty
  list allows no registry (inline avroSchema still works): fetching from a customer-given URL is a
  server-side request from inside the deployment's network.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple

from mailstream.gateway.triggers.rule import RuleError, TriggerRule

TOPIC_SETTING = "MAILSTREAM_TRIGGER_TOPIC_PREFIXES"
REGISTRY_SETTING = "MAILSTREAM_TRIGGER_REGISTRY_URLS"
ACCOUNT = "{account_id}"
TOPIC_PREFIX = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
DEFAULT_PORTS = {"http": 80, "https": 443}
# Strict on purpose: no user info, query, fragment, percent-escapes or backslashes, so that this
# check and the HTTP client can only ever read one host and path out of the text.
URL = re.compile(
    r"^(?P<scheme>[A-Za-z]+)://(?P<host>[A-Za-z0-9.-]+)(?::(?P<port>\d{1,5}))?(?P<path>(?:/[A-Za-z0-9._~-]*)*)$"
)


class Origin(NamedTuple):
    """A registry URL taken apart: scheme and host in lower case, the port made explicit, the path's segments."""

    scheme: str
    host: str
    port: int
    path: tuple[str, ...]


def origin(url: str) -> Origin:
    """Raises ValueError when the URL is not an http(s) URL of the strict form above."""
    m = URL.match(url)
    if m is None:
        raise ValueError(f"{url!r} is not an http(s) URL of the form scheme://host[:port][/path]")
    scheme, host = m["scheme"].lower(), m["host"].lower().rstrip(".")
    if scheme not in DEFAULT_PORTS:
        raise ValueError(f"{url!r}: only http and https")
    segments = tuple(s for s in m["path"].split("/") if s)
    if any(s in (".", "..") for s in segments):
        raise ValueError(f"{url!r}: no '.' or '..' in the path")
    port = int(m["port"]) if m["port"] else DEFAULT_PORTS[scheme]
    if not host or not 0 < port < 65536:
        raise ValueError(f"{url!r}: no host, or a port out of range")
    return Origin(scheme, host, port, segments)


def under(url: Origin, prefix: Origin) -> bool:
    return url[:3] == prefix[:3] and url.path[: len(prefix.path)] == prefix.path


def check_topic_prefix(prefix: str) -> None:
    """Raises ValueError for a prefix no topic name can start with (or one with an unknown placeholder)."""
    if not TOPIC_PREFIX.match(prefix.replace(ACCOUNT, "0")):
        raise ValueError(f"{prefix!r} is not a topic name prefix (letters, digits, '.', '_', '-', and {ACCOUNT})")


def topic_allowed(topic: str, prefixes: tuple[str, ...]) -> bool:
    return not prefixes or any(topic.startswith(p) for p in prefixes)


@dataclass(frozen=True)
class Allowed:
    topic_prefixes: tuple[str, ...] = ()
    registry_urls: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for prefix in self.topic_prefixes:
            try:
                check_topic_prefix(prefix)
            except ValueError as exc:
                raise ValueError(f"{TOPIC_SETTING}: {exc}") from None
        for url in self.registry_urls:
            try:
                origin(url)
            except ValueError as exc:
                raise ValueError(f"{REGISTRY_SETTING}: {exc}") from None

    @classmethod
    def of(cls, settings) -> Allowed:
        return cls(settings.trigger_topic_prefixes, settings.trigger_registry_urls)

    def topic_prefixes_for(self, account_id: int, override: tuple[str, ...] | None) -> tuple[str, ...]:
        """The account's own list if the operator set one, else the default; {account_id} replaced."""
        prefixes = self.topic_prefixes if override is None else override
        return tuple(p.replace(ACCOUNT, str(account_id)) for p in prefixes)

    def registry_allowed(self, url: str) -> bool:
        try:
            wanted = origin(url)
        except ValueError:
            return False
        return any(under(wanted, origin(prefix)) for prefix in self.registry_urls)

    def check(self, rule: TriggerRule, topic_prefixes: tuple[str, ...]) -> None:
        """Raises RuleError when the rule reads a topic or a registry the operator does not allow."""
        if not topic_allowed(rule.source_topic, topic_prefixes):
            raise RuleError(
                "sourceTopic",
                f"{rule.source_topic} is not a topic this account may read: it must start with "
                + " or ".join(repr(p) for p in topic_prefixes),
            )
        url = rule.schema_registry_url
        if url is None:
            return
        if not self.registry_urls:
            raise RuleError(
                "schemaRegistryUrl",
                f"no schema registry is allowed here (the operator's {REGISTRY_SETTING} is empty); "
                "give the schema inline as avroSchema",
            )
        try:
            origin(url)
        except ValueError as exc:
            raise RuleError("schemaRegistryUrl", str(exc)) from None
        if not self.registry_allowed(url):
            raise RuleError(
                "schemaRegistryUrl",
                f"{url} is not an allowed schema registry ({REGISTRY_SETTING}): use one under "
                + " or ".join(self.registry_urls),
            )
