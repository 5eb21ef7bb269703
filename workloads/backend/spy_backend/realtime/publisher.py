"""The one publisher interface the API uses for realtime delivery.

Implementations: `local_hub.LocalHub` (in-process, dev and tests) and
`azure.WebPubSubPublisher` (Azure Web PubSub). Both hand clients a URL in Azure's
format, and both speak `json.webpubsub.azure.v1` to them.
"""

from __future__ import annotations

from typing import Any, Protocol


class Publisher(Protocol):
    async def publish(self, group: str, message: dict[str, Any]) -> None:
        """Send a JSON message to every connection in the group."""
        ...

    async def publish_many(self, group: str, messages: list[dict[str, Any]]) -> int:
        """Send several messages; returns how many failed (a failure never raises)."""
        ...

    async def client_url(self, *, http_endpoint: str, groups: tuple[str, ...]) -> str:
        """A `ws(s)://...?access_token=...` URL letting a client join the groups.

        `http_endpoint` is how the caller reached this backend (used by the local hub).
        """
        ...

    async def close(self) -> None: ...
