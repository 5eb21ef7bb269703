"""The append-only audit log: one JSON line per signal seen, decision, refusal, order,
status change, fill, cancel and risk-state change.

Written by ``service.Bot`` (and ``feed`` for signals it drops as invalid). Each line
goes to stdout (collected with the pod's logs) and, when ``SPY_AUDIT_FILE`` is set, is
appended to that file (opened in append mode, flushed per line, fsynced at shutdown).
Lines carry the process's run id and a per-process sequence number, so a gap is visible
and (bot, run, seq) identifies a line. Each record is also handed to the `sinks`
(audit_shipper.AuditShipper.offer: the copy at the backend). docs/bot.md has the format.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import IO, Any

EVENTS = (
    "startup",
    "signal",
    "signal_invalid",
    "decision",
    "order",
    "order_status",
    "fill",
    "cancel",
    "risk_state",
    "reset",
    "shutdown",
)


class AuditLog:
    def __init__(
        self,
        bot: str,
        path: str = "",
        stream: IO[str] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.bot = bot
        self._stream = stream if stream is not None else sys.stdout
        self._file = open(path, "a", encoding="utf-8") if path else None  # noqa: SIM115
        self._clock = clock
        self._seq = 0
        # One process: its start time (µs since 1970, sortable) and pid.
        self.run = f"{int(self._clock().timestamp() * 1_000_000):016d}-{os.getpid()}"
        self.sinks: list[Callable[[dict[str, Any]], None]] = []
        self._lock = threading.Lock()
        self.records: list[dict[str, Any]] = []  # this process's lines (tests, /metrics)
        self.keep = True

    def write(self, event: str, **fields: Any) -> dict[str, Any]:
        if event not in EVENTS:
            raise ValueError(f"unknown audit event {event!r}")
        with self._lock:
            self._seq += 1
            record = {
                "ts": self._clock().isoformat(timespec="microseconds"),
                "seq": self._seq,
                "run": self.run,
                "bot": self.bot,
                "event": event,
                **fields,
            }
            line = json.dumps(record, default=str, separators=(",", ":")) + "\n"
            self._stream.write(line)
            self._stream.flush()
            if self._file is not None:
                self._file.write(line)
                self._file.flush()
            if self.keep:
                self.records.append(record)
            for sink in self.sinks:
                sink(record)
        return record

    def of(self, event: str) -> list[dict[str, Any]]:
        return [r for r in self.records if r["event"] == event]

    def close(self) -> None:
        if self._file is not None:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self._file = None
