from __future__ import annotations

from dataclasses import dataclass

from mailstream.core.settings import LinkSettings, setting


@dataclass(frozen=True)
class RendererSettings(LinkSettings):
    renderer_ops_port: int = setting(8081, "Port of the renderer's /healthz, /readyz and /metrics")
    policy_dir: str = setting("deploy/policy", "Folder of the sending policy (pools.toml, shaping, bounces)")
    return_path_label: str = setting(
        "bounces", "Label of a sending domain's return-path CNAME: <label>.<domain> -> MAILSTREAM_BOUNCE_HOST"
    )
    renderer_max_records: int = setting(500, "Send requests the renderer takes per batch (one lookup per kind each)")
    renderer_fetch_max_wait_ms: int = setting(
        100, "Longest a renderer fetch waits for renderer_fetch_min_bytes (the most a request waits on a quiet stack)"
    )
    renderer_fetch_min_bytes: int = setting(
        64 * 1024, "Bytes a renderer fetch waits for before it answers (~40 send requests; ~80 ms at 500/s)"
    )
