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
    sender_dns_server: str = setting(
        "", "DNS server (host:port) for MX lookups in direct mode; empty = system resolver"
    )
    sender_mx_port: int = setting(25, "SMTP port of recipient MX hosts in direct mode")
    sender_retry_base_seconds: float = setting(1200.0, "First retry delay of a deferred message; doubles per attempt")
    sender_retry_max_interval_seconds: float = setting(604800.0, "Longest wait between two attempts")
    sender_retry_max_age_seconds: float = setting(604800.0, "Age after which a deferred message expires (soft bounce)")
    sender_max_throttle_wait: float = setting(
        30.0, "Longest a message waits for a rate permit in-process; beyond it, it is deferred to a retry tier"
    )
    sender_group_id: str = setting("mailstream-sender", "Kafka consumer group of the sender processes")
    sender_topic_prefix: str = setting("", "Prefix of the topic names the sender uses (isolated test runs only)")
    sender_max_records: int = setting(500, "Records fetched per batch; each batch is finished and committed whole")
    sender_dkim_canonicalization: str = setting(
        "relaxed/simple",
        "DKIM header/body canonicalization: relaxed/simple (the body hashed as sent, as Amazon SES signs) or "
        "relaxed/relaxed (survives relays that rewrite white space, ~0.1-0.8 ms more per message)",
    )
    sender_fetch_min_bytes: int = setting(
        256 * 1024, "Bytes a sender fetch waits for before it answers (~6 rendered messages; ~12 ms at 500/s)"
    )
    sender_fetch_max_wait_ms: int = setting(
        100, "Longest a sender fetch waits for sender_fetch_min_bytes (the most a message waits on a quiet stack)"
    )
