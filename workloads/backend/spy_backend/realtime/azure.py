"""Azure Web PubSub publisher (azure-messaging-webpubsubservice, async client)."""

from __future__ import annotations

from typing import Any

from azure.messaging.webpubsubservice.aio import WebPubSubServiceClient

from spy_backend.realtime.tokens import join_roles


class WebPubSubPublisher:
    """Sends to groups over the service's REST API; tokens come from the SDK."""

    def __init__(self, connection_string: str, hub: str, minutes: int = 60) -> None:
        self._client = WebPubSubServiceClient.from_connection_string(
            connection_string, hub=hub, retry_total=2
        )
        self._minutes = minutes

    async def publish(self, group: str, message: dict[str, Any]) -> None:
        await self._client.send_to_group(group, message, content_type="application/json")

    async def client_url(self, *, http_endpoint: str, groups: tuple[str, ...]) -> str:
        del http_endpoint  # the service has its own endpoint
        token = await self._client.get_client_access_token(
            roles=join_roles(groups), minutes_to_expire=self._minutes
        )
        return str(token["url"])

    async def close(self) -> None:
        await self._client.close()
