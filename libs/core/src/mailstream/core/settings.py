"""Settings as a declared schema: each field has a type, a default that works locally and a
description, and is read once from MAILSTREAM_<FIELD> in a service's main().

    @dataclass(frozen=True)
    class Settings(CommonSettings):
        http_port: int = setting(8080, "Port of the HTTP API")

    settings = Settings.from_env()
"""

from __future__ import annotations

import dataclasses
import os
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Self

PREFIX = "MAILSTREAM_"


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


def setting(default: Any, description: str, *, secret: bool = False) -> Any:
    return dataclasses.field(default=default, metadata={"description": description, "secret": secret})


def env_name(field_name: str) -> str:
    return PREFIX + field_name.upper()


def _parse(raw: str, hint: Any, name: str) -> Any:
    origin = typing.get_origin(hint)
    try:
        if hint is bool:
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if hint is int:
            return int(raw)
        if hint is float:
            return float(raw)
        if origin is tuple:
            return tuple(part.strip() for part in raw.split(",") if part.strip())
        return raw
    except ValueError as exc:
        raise SettingsError(f"{name}={raw!r} is not a valid {getattr(hint, '__name__', hint)}") from exc


@dataclass(frozen=True)
class CommonSettings:
    kafka_bootstrap: str = setting("127.0.0.1:9092", "Kafka bootstrap servers (host:port, comma-separated)")
    database_url: str = setting(
        "postgresql://mailstream:mailstream@127.0.0.1:5432/mailstream",
        "PostgreSQL URL; when set before `make run`, that server is used instead of the local cluster",
        secret=True,
    )
    log_level: str = setting("INFO", "Log level: DEBUG, INFO, WARNING or ERROR")
    send_log: bool = setting(True, "One INFO line per send and step with its message_id and status_id (grep one send)")
    http_host: str = setting("127.0.0.1", "Address every HTTP listener binds (0.0.0.0 in containers)")
    schema_registry_url: str = setting(
        "",
        "A Confluent-compatible schema registry: records are written in Confluent's wire format with subjects "
        "<topic>-value (empty: Avro single-object encoding); both formats are read. `make run` starts the local "
        "one when this is http://127.0.0.1:8085",
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        environ = os.environ if environ is None else environ
        hints = typing.get_type_hints(cls)
        values = {}
        for f in dataclasses.fields(cls):
            name = env_name(f.name)
            if name in environ:
                values[f.name] = _parse(environ[name], hints[f.name], name)
            elif f.default is dataclasses.MISSING:
                raise SettingsError(f"{name} is required: {f.metadata.get('description', '')}")
        return cls(**values)

    @classmethod
    def describe(cls) -> list[tuple[str, str, str]]:
        """(variable, default, description) for each setting: the README's settings table."""
        rows = []
        for f in dataclasses.fields(cls):
            default = "(required)" if f.default is dataclasses.MISSING else f.default
            if isinstance(default, tuple):
                default = ",".join(default)
            rows.append((env_name(f.name), str(default), f.metadata.get("description", "")))
        return rows

    def redacted(self) -> dict[str, Any]:
        """The settings with secrets masked, for the start-up log line."""
        return {f.name: "***" if f.metadata.get("secret") else getattr(self, f.name) for f in dataclasses.fields(self)}


@dataclass(frozen=True)
class LinkSettings(CommonSettings):
    """The settings of the services that make or check tracking links (renderer, tracker) only:
    the link-signing key is no other service's business."""

    tracking_base_url: str = setting(
        "http://127.0.0.1:8090", "Public base URL of the tracker: open pixels, click and unsubscribe links"
    )
    link_signing_keys: tuple[str, ...] = setting(
        ("dev-1:development-only-link-key-change-me",),
        "Tracking-link HMAC keys as id:secret, comma-separated; the first signs, all verify (rotation)",
        secret=True,
    )
