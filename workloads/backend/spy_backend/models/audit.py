"""Wire models of the bots' audit trail: `POST /api/v1/audit` and `GET /api/v1/audit`.

A record is one line of a bot's audit log (spy_bot.audit, docs/bot.md "Audit log"): the
common fields are checked here, the event's own fields are kept as sent (bounded in
size and depth, finite numbers only, so storing and answering can not fail on them).
A record's id is (`bot`, `run`, `seq`): `run` names one bot process, `seq` counts its
lines from 1. Records are immutable, so a resent record is a duplicate, never an update.
"""

from __future__ import annotations

import json
import math
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    model_validator,
)

from spy_backend.models.common import Count, UtcTimestamp

AUDIT_EVENTS = (
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
AuditEvent = Literal[
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
]
MAX_RECORDS = 1000
MAX_RECORD_BYTES = 16 * 1024  # one Table entity property holds 32K UTF-16 characters
MAX_DEPTH = 8
# `namespace/name` of a TradingBot: a DNS label, a slash, a DNS subdomain name.
BOT_PATTERN = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?/[a-z0-9]([-.a-z0-9]{0,251}[a-z0-9])?$"
BotRef = Annotated[str, Field(pattern=BOT_PATTERN, examples=["spy-paper/mean-reversion"])]
RunId = Annotated[
    str,
    Field(
        pattern=r"^[0-9A-Za-z][0-9A-Za-z._-]{0,63}$",
        description="One bot process (spy_bot: start time in µs and pid).",
    ),
]
# JSON Schema's integer admits 153.0; the spec promises it, so it is taken as 153.


def _check_value(value: Any, where: str, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise ValueError(f"{where}: nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{where}: numbers must be finite")
    if isinstance(value, dict):
        for key, item in value.items():
            _check_value(item, f"{where}.{key}", depth + 1)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check_value(item, f"{where}[{i}]", depth + 1)


class AuditRecord(BaseModel):
    """One audit line; fields beyond these are the event's own (docs/bot.md)."""

    model_config = ConfigDict(extra="allow")

    ts: UtcTimestamp
    seq: Count = Field(ge=1, le=10**15)  # JSON Schema's integer admits 153.0
    run: RunId
    bot: BotRef
    event: AuditEvent

    _ts_text: str | None = PrivateAttr(default=None)

    @model_validator(mode="wrap")
    @classmethod
    def _keep_ts_as_sent(cls, data: Any, handler: ModelWrapValidatorHandler[AuditRecord]) -> Any:
        # The stored copy is the line as the bot wrote it (its file has the same text).
        record = handler(data)
        if isinstance(data, dict) and isinstance(data.get("ts"), str):
            record._ts_text = data["ts"]
        return record

    @model_validator(mode="after")
    def _bounded(self) -> AuditRecord:
        for key, value in (self.model_extra or {}).items():
            _check_value(value, key, 1)
        size = len(self.text().encode())
        if size > MAX_RECORD_BYTES:
            raise ValueError(f"record is {size} bytes as JSON; at most {MAX_RECORD_BYTES}")
        return self

    def text(self) -> str:
        """The record as stored and returned (compact JSON, all fields)."""
        fields = self.model_dump(mode="json")
        if self._ts_text is not None:
            fields["ts"] = self._ts_text
        return json.dumps(fields, separators=(",", ":"), allow_nan=False)


class AuditBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    records: list[AuditRecord] = Field(min_length=1, max_length=MAX_RECORDS)


class AuditResult(BaseModel):
    stored: int = Field(description="Records stored now.")
    duplicate: int = Field(description="Records that were stored before (or twice in the batch).")


class AuditPage(BaseModel):
    items: list[dict[str, Any]] = Field(description="Audit records, newest first.")
    next_cursor: str | None = Field(
        default=None, description="Pass as `cursor` for the next (older) page."
    )
