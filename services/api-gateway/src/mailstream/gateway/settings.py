from __future__ import annotations

from dataclasses import dataclass

from mailstream.core.settings import CommonSettings, setting


@dataclass(frozen=True)
class GatewaySettings(CommonSettings):
    http_port: int = setting(8080, "Port of the gateway's HTTP API (also /healthz, /readyz, /metrics)")
