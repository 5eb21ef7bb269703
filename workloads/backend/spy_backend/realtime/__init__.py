"""Realtime delivery: one Publisher interface, Azure Web PubSub or the local hub."""

from spy_backend.realtime.azure import WebPubSubPublisher
from spy_backend.realtime.local_hub import SUBPROTOCOL, LocalHub
from spy_backend.realtime.publisher import Publisher

__all__ = ["SUBPROTOCOL", "LocalHub", "Publisher", "WebPubSubPublisher"]
