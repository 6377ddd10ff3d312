from __future__ import annotations

from dataclasses import dataclass

from mailstream.core.settings import setting
from mailstream.gateway.settings import GatewaySettings


@dataclass(frozen=True)
class TriggerSettings(GatewaySettings):
    """The trigger process reads the gateway's settings (database, Kafka, accept batches, sending
    domains) and these."""

    trigger_ops_port: int = setting(8086, "Port of the trigger process's /healthz, /readyz and /metrics")
    trigger_refresh_s: float = setting(
        1.0, "How often the trigger process reads the rules (a new, changed, paused or deleted rule takes effect)"
    )
    trigger_max_records: int = setting(500, "Records of a rule's topic taken per batch (one group commit or a few)")
    trigger_fetch_max_wait_ms: int = setting(
        50, "Longest a trigger fetch waits for trigger_fetch_min_bytes (latency added on a quiet topic)"
    )
    trigger_fetch_min_bytes: int = setting(16384, "Bytes a trigger fetch waits for before it answers")
    trigger_db_pool_size: int = setting(8, "Most PostgreSQL connections the trigger process holds")
