"""Snapshot files: JSON Lines, one header line per snapshot followed by its quotes.

Who calls this: the detector's replay source and recorder and its ``scan`` CLI, the
synthetic market's ``--record`` helper, tests. This is the only module of
`spy_analytics` that touches files. Schema (docs/analytics.md, "Snapshot files")::

    {"type": "snapshot", "ts": "2026-11-25T15:30:00Z", "symbol": "SPY", "spot": 600.12,
     "rate": 0.043, "div_yield": 0.012, "count": 2,
     "dividends": [{"ex_date": "2026-12-18", "amount": 1.85}],      (optional)
     "spot_history": [[1795620598.2, 600.10], [1795620599.9, 600.12]]}  (optional)
    {"type": "quote", "expiry": "2026-12-19", "strike": 600.0, "right": "C", "bid": 9.1,
     "ask": 9.2, "last": 9.15, "volume": 1520, "open_interest": 20311,
     "quote_ts": 1795620599.5}
    {"type": "quote", ...}

A file may hold many snapshots (a recording); quotes belong to the latest header.
Lines of any other ``type`` (e.g. ``"label"`` ground truth written by the synthetic
market) are skipped by the reader. Missing quote fields are allowed (counted as data
quality by the pipeline, never an exception); a malformed line is counted in the
snapshot's ``rejected["malformed_line"]``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from .chain import ChainSnapshot
from .dividends import DividendSchedule
from .types import format_ts


def write_snapshot(
    out: IO[str],
    snapshot: ChainSnapshot,
    extra_lines: Iterable[Mapping[str, Any]] = (),
) -> None:
    """Append one snapshot (header + quotes, then ``extra_lines``) to a text stream."""
    header = {
        "type": "snapshot",
        "ts": format_ts(snapshot.ts),
        "symbol": snapshot.symbol,
        "spot": snapshot.spot,
        "rate": snapshot.rate,
        "div_yield": snapshot.div_yield,
        "count": len(snapshot),
    }
    if snapshot.dividends:
        header["dividends"] = snapshot.dividends.to_json()
    if snapshot.spot_ts.size:
        header["spot_history"] = [
            [float(t), float(p)] for t, p in zip(snapshot.spot_ts, snapshot.spot_px, strict=True)
        ]
    out.write(json.dumps(header, separators=(",", ":")) + "\n")
    for rec in snapshot.to_records():
        out.write(json.dumps({"type": "quote", **rec}, separators=(",", ":")) + "\n")
    for line in extra_lines:
        out.write(json.dumps(dict(line), separators=(",", ":")) + "\n")


def read_snapshots(source: str | Path | Iterable[str]) -> Iterator[ChainSnapshot]:
    """Yield every snapshot of a file path (or of an iterable of lines), in order."""
    if isinstance(source, str | Path):
        with open(source, encoding="utf-8") as fh:
            yield from _parse(fh)
    else:
        yield from _parse(source)


def read_snapshot(source: str | Path | Iterable[str]) -> ChainSnapshot:
    """The first snapshot of a file; ``ValueError`` when it holds none."""
    for snap in read_snapshots(source):
        return snap
    raise ValueError(f"no snapshot header in {source!r}")


def _parse(lines: Iterable[str]) -> Iterator[ChainSnapshot]:
    header: dict[str, Any] | None = None
    quotes: list[dict[str, Any]] = []
    malformed = 0
    for raw in lines:
        text = raw.strip()
        if not text:
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError:
            malformed += 1
            continue
        if not isinstance(obj, dict):
            malformed += 1
            continue
        kind = obj.get("type")
        if kind == "snapshot":
            if header is not None:
                yield _build(header, quotes, malformed)
            header, quotes, malformed = obj, [], 0
        elif kind == "quote":
            quotes.append(obj)
    if header is not None:
        yield _build(header, quotes, malformed)


def _build(
    header: Mapping[str, Any], quotes: list[dict[str, Any]], malformed: int
) -> ChainSnapshot:
    ts_text = str(header.get("ts", "1970-01-01T00:00:00Z"))
    try:
        dividends = DividendSchedule.from_json(header.get("dividends", []))
    except (KeyError, TypeError, ValueError):
        dividends = DividendSchedule()  # a bad header field is not worth losing the chain
        malformed += 1
    history = header.get("spot_history")
    try:
        pairs = [(float(t), float(p)) for t, p in history] if isinstance(history, list) else []
    except (TypeError, ValueError):
        pairs = []
        malformed += 1
    snap = ChainSnapshot.from_records(
        quotes,
        ts=datetime.fromisoformat(ts_text.replace("Z", "+00:00")),
        symbol=str(header.get("symbol", "SPY")),
        spot=_num(header.get("spot")),
        rate=_num(header.get("rate"), 0.0),
        div_yield=_num(header.get("div_yield"), 0.0),
        dividends=dividends,
        spot_history=([p[0] for p in pairs], [p[1] for p in pairs]) if pairs else None,
    )
    if malformed:
        rejected = dict(snap.rejected)
        rejected["malformed_line"] = rejected.get("malformed_line", 0) + malformed
        object.__setattr__(snap, "rejected", rejected)
    return snap


def _num(value: Any, default: float = math.nan) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default
