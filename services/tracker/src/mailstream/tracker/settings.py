from __future__ import annotations

from dataclasses import dataclass

from mailstream.core.settings import LinkSettings, setting


@dataclass(frozen=True)
class TrackerSettings(LinkSettings):
    tracker_http_port: int = setting(8090, "Port of the tracking endpoints, /healthz, /readyz and /metrics")
    feedback_smtp_port: int = setting(
        2591,
        "Port of the tracker's inbound SMTP address: ARF feedback-loop reports, and DSNs mailed to return paths"
        " (late bounces; 0 disables it)",
    )
    policy_dir: str = setting(
        "deploy/policy", "Folder of the sending policy (the tracker reads bounces.toml, to classify late bounces)"
    )
    tracker_max_records: int = setting(1000, "Records the tracker writes per batch (one transaction each)")
    tracker_fetch_max_wait_ms: int = setting(
        200, "Longest a tracker fetch waits for tracker_fetch_min_bytes (how late a status may show on a quiet stack)"
    )
    tracker_fetch_min_bytes: int = setting(64 * 1024, "Bytes a tracker fetch waits for before it answers")
    link_scanner_window_s: float = setting(
        5.0, "A click this many seconds after its message's delivery is counted as a link scanner's (machine)"
    )
