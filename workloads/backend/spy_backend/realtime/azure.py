"""Azure Web PubSub publisher (azure-messaging-webpubsubservice, async client)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from azure.core.exceptions import AzureError
from azure.messaging.webpubsubservice.aio import WebPubSubServiceClient

from spy_backend.proxy import proxy_configured
from spy_backend.realtime.tokens import join_roles

log = logging.getLogger(__name__)
CONCURRENT_SENDS = 16


class WebPubSubPublisher:
    """Sends to groups over the service's REST API; tokens come from the SDK."""

    def __init__(self, connection_string: str, hub: str, minutes: int = 60) -> None:
        self._client = WebPubSubServiceClient.from_connection_string(
            connection_string,
            hub=hub,
            retry_total=2,
            connection_timeout=5,
            read_timeout=10,
            use_env_settings=proxy_configured(),
        )
        self._minutes = minutes

    async def publish(self, group: str, message: dict[str, Any]) -> None:
        await self._client.send_to_group(group, message, content_type="application/json")

    async def publish_many(self, group: str, messages: list[dict[str, Any]]) -> int:
        """One REST call per message, 16 in flight (a big batch would be slow one by one;
        Azure gives no order across concurrent calls, and clients sort by `ts`)."""
        gate = asyncio.Semaphore(CONCURRENT_SENDS)

        async def send(message: dict[str, Any]) -> bool:
            async with gate:
                try:
                    await self.publish(group, message)
                except (AzureError, OSError, TimeoutError) as exc:
                    # The record is stored; clients catch up from the query API.
                    log.warning("web pubsub send failed", extra={"error": type(exc).__name__})
                    return False
            return True

        results = await asyncio.gather(*(send(m) for m in messages))
        return results.count(False)

    async def client_url(self, *, http_endpoint: str, groups: tuple[str, ...]) -> str:
        del http_endpoint  # the service has its own endpoint
        token = await self._client.get_client_access_token(
            roles=join_roles(groups), minutes_to_expire=self._minutes
        )
        return str(token["url"])

    async def close(self) -> None:
        await self._client.close()
