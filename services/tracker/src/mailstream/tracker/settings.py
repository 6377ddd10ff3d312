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
    feedback_arf_secret: str = setting(
        "",
        "Shared secret of POST /mailstream/v1/feedback/arf: Authorization: Bearer <secret>, or basic auth with it as"
        " the password (empty: every report there is refused)",
        secret=True,
    )
    feedback_sns_topic_arns: str = setting(
        "",
        "SNS topics (ARNs, comma-separated) whose signed SES complaints POST /mailstream/v1/feedback/ses takes"
        " (empty: none)",
    )
    feedback_sns_cert_url_prefixes: str = setting(
        "",
        "URL prefixes of SNS signing certificates allowed besides Amazon's own SNS hosts (comma-separated; for tests)",
    )
    feedback_smtp_sources: str = setting(
        "",
        "Networks (CIDR, comma-separated) that may mail ARF reports to the inbound SMTP address (empty: none;"
        " DSNs to return paths are taken from anyone)",
    )
    link_scanner_window_s: float = setting(
        5.0, "A click this many seconds after its message's delivery is counted as a link scanner's (machine)"
    )
