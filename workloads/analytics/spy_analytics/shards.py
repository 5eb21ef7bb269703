"""Sharded analysis that adds up: what a shard reports and how its parts are merged.

Who calls this: `spy_analytics.analyze` (a snapshot with ``context_expiries``), the
detector (it publishes `gex_part`/`flow_part` when it runs as shard i of n > 1) and the
backend (it merges the parts of one snapshot time with `merge_gex`/`merge_flow`).

A detector shard owns some expiries (``spy_detector.sharding``) and also holds the
expiry after each of them as read-only *context*, so the calendar rule checks every
adjacent pair once: by the shard that owns the pair's near leg (`rules.calendar`). No
other finding, and no GEX or flow, comes from a context expiry.

Every structure figure is a sum over contracts, so the whole chain's figure is the sum
of the shards' (disjoint expiries):

* GEX per strike and net GEX: summed per strike;
* the gamma flip is not additive, but the curve it is found on is: each shard sends
  its net GEX on the flip grid (`structure.flip_grid`, relative to spot) and the merge
  finds the flip on the summed curve with the same `structure.flip_level`;
* premium (gross and signed) and session volumes are summed; the put/call ratio is
  recomputed from the summed volumes.

Parts are merged only when all ``count`` shards of one snapshot time are present
(replay and synthetic sources stamp every shard's snapshot with the same time).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .frame import Frame
from .rules import Finding
from .structure import flip_level
from .types import MAX_GEX, MAX_NET_GEX, MAX_PREMIUM, AnomalyKind, GammaExposure, PremiumFlow

#: the backend's bound on put_call_volume_ratio
MAX_RATIO = 1e6


def owned_findings(f: Frame, findings: list[Finding]) -> tuple[list[Finding], Frame]:
    """Findings this shard reports, and the frame restricted to its own expiries.

    Calendar findings stay (the rule already kept only pairs whose near leg is owned;
    it may blame the far, context leg); every other finding on a context expiry goes.
    """
    context = sorted(f.snap.context_expiries)
    owned = ~np.isin(f.expiry_str, context)
    kept = [x for x in findings if x.kind is AnomalyKind.CALENDAR or owned[x.row]]
    return kept, dataclasses.replace(f, usable=f.usable & owned)


def gex_part(gex: GammaExposure, index: int, count: int, flip_range: float) -> dict[str, Any]:
    """The wire GEX record of shard ``index`` of ``count``, with its flip-grid curve."""
    wire = gex.to_wire()
    wire["shard"] = {"index": index, "count": count}
    curve = [float(v) if np.isfinite(v) else 0.0 for v in gex.flip_curve]
    wire["flip_curve"] = {"range": flip_range, "net": curve}
    return wire


def flow_part(flow: PremiumFlow, index: int, count: int) -> dict[str, Any]:
    """The wire flow record of shard ``index`` of ``count``, with its session volumes."""
    wire = flow.to_wire()
    wire["shard"] = {"index": index, "count": count}
    wire["call_volume"] = max(0.0, float(flow.call_volume))
    wire["put_volume"] = max(0.0, float(flow.put_volume))
    return wire


def merge_gex(parts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One GEX record (wire fields, no shard fields) from the parts of one snapshot.

    Strikes are the union, GEX summed per strike; the flip comes from the summed
    flip-grid curve, or None when the parts' grids differ (another configuration).
    """
    first = parts[0]
    spot = float(first["spot"])
    per_strike: dict[float, float] = {}
    for part in parts:
        for strike, value in zip(part["strikes"], part["gex"], strict=True):
            per_strike[float(strike)] = per_strike.get(float(strike), 0.0) + float(value)
    strikes = sorted(per_strike)
    curves = [p.get("flip_curve") or {} for p in parts]
    grids = {(float(c.get("range", 0.0)), len(c.get("net", ()))) for c in curves}
    flip = None
    if len(grids) == 1 and all(c.get("net") for c in curves):
        net = np.sum([np.asarray(c["net"], dtype=np.float64) for c in curves], axis=0)
        flip = flip_level(spot, net, float(curves[0]["range"]))
    return {
        "ts": first["ts"],
        "symbol": first["symbol"],
        "spot": spot,
        "strikes": strikes,
        "gex": [_clamp(per_strike[k], MAX_GEX) for k in strikes],
        "net_gex": _clamp(sum(float(p["net_gex"]) for p in parts), MAX_NET_GEX),
        "flip": flip,
    }


def merge_flow(parts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One flow record (wire fields, no shard fields) from the parts of one snapshot."""
    first = parts[0]
    call_volume = sum(float(p.get("call_volume") or 0.0) for p in parts)
    put_volume = sum(float(p.get("put_volume") or 0.0) for p in parts)
    ratio = put_volume / call_volume if call_volume > 0.0 else None
    return {
        "ts": first["ts"],
        "symbol": first["symbol"],
        "call_premium": _clamp(sum(float(p["call_premium"]) for p in parts), MAX_PREMIUM),
        "put_premium": _clamp(sum(float(p["put_premium"]) for p in parts), MAX_PREMIUM),
        "net_premium": _clamp(sum(float(p["net_premium"]) for p in parts), MAX_PREMIUM),
        "put_call_volume_ratio": ratio if ratio is not None and ratio <= MAX_RATIO else None,
    }


def _clamp(value: float, bound: float) -> float:
    """Within the wire bounds, as `types` clamps a whole record (sums of valid parts
    can exceed them); non-finite sums are 0."""
    return max(-bound, min(bound, value)) if np.isfinite(value) else 0.0


def complete(parts: Sequence[Mapping[str, Any]]) -> bool:
    """True when ``parts`` hold exactly one part of every shard index of one count."""
    counts = {int(p["shard"]["count"]) for p in parts}
    if len(counts) != 1:
        return False
    indices = sorted(int(p["shard"]["index"]) for p in parts)
    return indices == list(range(counts.pop()))
