"""The bot and the backend are separate packages (import-linter keeps them apart), so
each names the audit events it writes or accepts; this contract keeps the two lists
equal, as tests/backend's detector contract does for the anomaly wire format."""

from __future__ import annotations

from spy_backend.models.audit import AUDIT_EVENTS
from spy_bot.audit import EVENTS


def test_the_backend_accepts_exactly_the_events_the_bot_writes() -> None:
    assert tuple(AUDIT_EVENTS) == tuple(EVENTS)
