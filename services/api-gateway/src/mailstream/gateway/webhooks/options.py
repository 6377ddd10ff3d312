"""What the gateway's webhook routes need of the settings: the URL policy, the test event's POST,
the default overlap of a rotated secret. One client, made on first use, for test events."""

from __future__ import annotations

from dataclasses import dataclass, field

from mailstream.gateway.webhooks.client import WebhookClient


@dataclass
class WebhookOptions:
    allow_private_targets: bool = False
    timeout_s: float = 10.0
    max_response_bytes: int = 4096
    secret_overlap_s: float = 86400.0
    _client: WebhookClient | None = field(default=None, repr=False)

    @classmethod
    def of(cls, settings) -> WebhookOptions:
        return cls(
            allow_private_targets=settings.webhook_allow_private_targets,
            timeout_s=settings.webhook_timeout_s,
            max_response_bytes=settings.webhook_max_response_bytes,
            secret_overlap_s=settings.webhook_secret_overlap_s,
        )

    def client(self) -> WebhookClient:
        if self._client is None:
            self._client = WebhookClient(
                allow_private=self.allow_private_targets,
                timeout_s=self.timeout_s,
                max_response_bytes=self.max_response_bytes,
            )
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
