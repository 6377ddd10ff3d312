from __future__ import annotations

from dataclasses import dataclass

from mailstream.core.settings import CommonSettings, setting


@dataclass(frozen=True)
class TrackerSettings(CommonSettings):
    tracker_http_port: int = setting(8090, "Port of the tracking endpoints, /healthz, /readyz and /metrics")
    feedback_smtp_port: int = setting(
        2591, "Port of the tracker's inbound SMTP address for ARF feedback-loop reports (0 disables it)"
    )
