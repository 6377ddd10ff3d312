"""What the gateway's webhook routes need of the settings: the URL policy, the test event's POST,
the default overlap of a rotated secret. One client, made on first use, for test events."""

from __future__ import annotations

from dataclasses import dataclass, field

from mailstream.gateway.webhooks.client import WebhookClient
from mailstream.gateway.webhooks.url_policy import Networks, parse_networks


@dataclass
class WebhookOptions:
    allowed_networks: Networks = ()
    timeout_s: float = 10.0
    max_response_bytes: int = 4096
    secret_overlap_s: float = 86400.0
    _client: WebhookClient | None = field(default=None, repr=False)

    @classmethod
    def of(cls, settings) -> WebhookOptions:
        return cls(
            allowed_networks=parse_networks(settings.webhook_allowed_networks),
            timeout_s=settings.webhook_timeout_s,
            max_response_bytes=settings.webhook_max_response_bytes,
            secret_overlap_s=settings.webhook_secret_overlap_s,
        )

    def client(self) -> WebhookClient:
        if self._client is None:
            self._client = WebhookClient(
                allowed=self.allowed_networks,
                timeout_s=self.timeout_s,
                max_response_bytes=self.max_response_bytes,
            )
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
