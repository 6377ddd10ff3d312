from __future__ import annotations

from dataclasses import dataclass

from mailstream.core.settings import CommonSettings, setting


@dataclass(frozen=True)
class RendererSettings(CommonSettings):
    renderer_ops_port: int = setting(8081, "Port of the renderer's /healthz, /readyz and /metrics")
    policy_dir: str = setting("deploy/policy", "Folder of the sending policy (pools.toml, shaping, bounces)")
