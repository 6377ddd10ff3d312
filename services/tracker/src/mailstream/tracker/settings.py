from __future__ import annotations

from dataclasses import dataclass

from mailstream.core.settings import CommonSettings, setting


@dataclass(frozen=True)
class TrackerSettings(CommonSettings):
    tracker_http_port: int = setting(8090, "Port of the tracking endpoints, /healthz, /readyz and /metrics")
