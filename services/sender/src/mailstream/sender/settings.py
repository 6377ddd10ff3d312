from __future__ import annotations

from dataclasses import dataclass

from mailstream.core.settings import CommonSettings, setting


@dataclass(frozen=True)
class SenderSettings(CommonSettings):
    sender_ops_port: int = setting(8082, "Port of the sender's /healthz, /readyz and /metrics")
    sender_relay: str = setting(
        "127.0.0.1:2525", "Smart host (host:port) all mail is relayed through; empty = direct to MX"
    )
    sender_helo_name: str = setting("mailstream.local", "Name the sender gives in EHLO")
    sender_smtp_timeout: float = setting(30.0, "Seconds before an SMTP command times out")
    policy_dir: str = setting("deploy/policy", "Folder of the sending policy (pools.toml, shaping, bounces)")
