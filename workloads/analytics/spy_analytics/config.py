"""Configuration of the analytics pipeline: one frozen dataclass per rule.

Who calls this: `spy_analytics.analyze` (defaults), the detector (thresholds from the
OptionsDetector CR via `AnalyzerConfig.with_overrides`). Every default is documented
in docs/analytics.md next to the rule's formula.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class SeverityBands:
    """Score thresholds: score >= low -> LOW, >= medium -> MEDIUM, >= high -> HIGH."""

    low: float
    medium: float
    high: float


@dataclass(frozen=True)
class QualityConfig:
    """Data-quality screen (counted, never anomalies)."""

    #: A quote older than this (snapshot ts - quote_ts) is stale.
    stale_after_s: float = 300.0
    #: Skip contracts whose volume or open interest is missing (NaN) as ``bad_volume``.
    #: False keeps their quotes for IV, smiles and price rules (a live feed may not have
    #: sent open interest yet); volume/OI rules, GEX and flow then ignore them.
    skip_missing_volume_oi: bool = True
    #: Volume or open interest above this (contracts) is a sentinel, not data
    #: (IB sends 1.797e308 for "unset"): ``bad_volume``.
    max_volume_oi: float = 1e8
    #: A bid, ask or last price above this (USD per share) is a sentinel: ``bad_price``.
    max_price: float = 1e6


@dataclass(frozen=True)
class ForwardConfig:
    """Where the forward of each expiry comes from."""

    #: Median put-call-parity forward of the ``pairs`` pairs nearest the money, instead
    #: of the model forward from the snapshot's rate, dividends and dividend yield.
    implied_from_parity: bool = True
    #: Fall back to the model forward (S - PV(D)) e^{(r-q)T} when the implied forward is
    #: further than this (fraction) from it.
    max_deviation: float = 0.02
    #: Put/call pairs nearest the money whose median gives the implied forward.
    pairs: int = 7


@dataclass(frozen=True)
class IVResidualConfig:
    """IV residual vs the fitted smile, in units of the quote's own IV uncertainty.

    z = (iv_mid - iv_fit) / sqrt((half_spread / vega)^2 + model_floor^2)
    """

    enabled: bool = True
    bands: SeverityBands = SeverityBands(low=5.0, medium=8.0, high=12.0)
    #: IV uncertainty floor (vol points as decimal) covering smile-model error.
    model_floor: float = 0.004
    #: Smallest |iv - fit| that may fire, decimal vol.
    min_abs_residual: float = 0.01
    #: Contracts with |k| / (atm_iv * sqrt(t)) beyond this are not tested (no vega).
    max_abs_z_moneyness: float = 4.0
    #: Test in-the-money quotes too: their IV is taken from the mid less the estimated
    #: early-exercise premium (`spy_analytics.american`).
    test_itm: bool = True
    #: Model uncertainty of that premium, as a fraction of it (added to sigma in IV).
    eep_uncertainty: float = 0.3


@dataclass(frozen=True)
class VolOIConfig:
    """Volume vs open interest, after Barchart's unusual-options-activity screen."""

    enabled: bool = True
    min_volume: float = 500.0
    min_open_interest: float = 100.0
    min_price: float = 0.10
    #: score = volume / open_interest.
    bands: SeverityBands = SeverityBands(low=1.25, medium=2.5, high=5.0)
    #: Same-day (0DTE) contracts start the day with little OI; skip them.
    min_dte_days: float = 1.0


@dataclass(frozen=True)
class VolumeZConfig:
    """Volume traded since the previous snapshot vs the contract's own EWMA baseline."""

    enabled: bool = True
    bands: SeverityBands = SeverityBands(low=5.0, medium=8.0, high=12.0)
    min_samples: int = 5
    min_increment: float = 100.0
    #: EWMA weight of the newest sample in the baseline.
    alpha: float = 0.1


@dataclass(frozen=True)
class BoundsConfig:
    """American put-call parity bounds and early-exercise (intrinsic) bounds.

    Breaks are measured at executable prices (bid/ask), so a break is money on the table
    net of the spread; score = break in USD / tolerance.
    """

    parity_enabled: bool = True
    early_exercise_enabled: bool = True
    #: USD beyond the bid/ask a break must exceed before it is scored.
    tolerance: float = 0.05
    bands: SeverityBands = SeverityBands(low=1.0, medium=3.0, high=6.0)
    #: Spot-dependent bounds are only tested on quotes at most this old (snapshot ts -
    #: quote_ts, seconds): an older quote was priced off an older spot. When the
    #: snapshot carries no quote times at all (synthetic/replay files without them)
    #: every contract is tested.
    max_quote_age_s: float = 5.0
    #: Without a spot history, the tolerance of a quote widens by |delta| times this
    #: many standard deviations of the spot move over the quote's age, at
    #: ``spot_vol`` (annualised) - the spot the quote was priced off is unknown.
    spot_move_sigmas: float = 3.0
    spot_vol: float = 0.20


@dataclass(frozen=True)
class StaticArbConfig:
    """Call-spread monotonicity, butterfly convexity and calendar breaks at bid/ask."""

    call_spread_enabled: bool = True
    butterfly_enabled: bool = True
    calendar_enabled: bool = True
    tolerance: float = 0.03
    #: score = break in USD / tolerance.
    bands: SeverityBands = SeverityBands(low=1.0, medium=3.0, high=6.0)


@dataclass(frozen=True)
class SpreadBlowoutConfig:
    """Bid-ask spread against what is normal for the contract, in a tick-aware way.

    Two references, both divided by the chain-wide median of the same ratio (so a
    wide market - the open, news - is not a blow-out of every contract):

    * its neighbours: the median spread of the ``neighbours`` strikes on either side
      (same expiry and right) - works from a single snapshot;
    * its own EWMA spread, once it has ``min_samples`` samples.

    score = the smaller of the available ratios (both must agree once warm).
    """

    enabled: bool = True
    bands: SeverityBands = SeverityBands(low=3.0, medium=5.0, high=8.0)
    min_samples: int = 5
    #: Spread must also exceed its reference by at least this many USD (5 ticks).
    min_widening: float = 0.05
    #: Minimum price increment (SPY trades in pennies); references are floored at 2.
    tick: float = 0.01
    #: Strikes on each side used for the neighbour reference.
    neighbours: int = 3
    alpha: float = 0.1


@dataclass(frozen=True)
class StructureConfig:
    """Gamma exposure and flow."""

    contract_multiplier: float = 100.0
    #: Half-width of the spot grid used to find the gamma flip level (fraction of spot).
    flip_range: float = 0.08
    flip_grid_points: int = 33
    #: Contracts further out than this (years) are left out of the flip search.
    flip_max_t: float = 0.25
    #: Longer than this (seconds) since the previous snapshot (a reconnect, a stalled
    #: feed), the volume traded meanwhile is not counted as one interval's flow, nor as
    #: a volume_z sample: it would be minutes of trading shown as a spike.
    max_increment_gap_s: float = 300.0


@dataclass(frozen=True)
class AnalyzerConfig:
    """Everything `analyze` can be told. ``AnalyzerConfig()`` is the documented default."""

    quality: QualityConfig = field(default_factory=QualityConfig)
    forward: ForwardConfig = field(default_factory=ForwardConfig)
    iv_residual: IVResidualConfig = field(default_factory=IVResidualConfig)
    vol_oi: VolOIConfig = field(default_factory=VolOIConfig)
    volume_z: VolumeZConfig = field(default_factory=VolumeZConfig)
    bounds: BoundsConfig = field(default_factory=BoundsConfig)
    static_arb: StaticArbConfig = field(default_factory=StaticArbConfig)
    spread_blowout: SpreadBlowoutConfig = field(default_factory=SpreadBlowoutConfig)
    structure: StructureConfig = field(default_factory=StructureConfig)

    def with_overrides(self, overrides: Mapping[str, Any]) -> AnalyzerConfig:
        """Copy with dotted-path overrides, e.g. ``{"vol_oi.min_volume": 1000,
        "iv_residual.bands.high": 10}``. Unknown paths raise ``KeyError`` (a typo in a
        CR must not silently keep the default)."""
        result: Any = self
        for path, value in overrides.items():
            result = _replace_path(result, path.split("."), value, path)
        assert isinstance(result, AnalyzerConfig)
        return result


DEFAULT_CONFIG = AnalyzerConfig()


def _replace_path(obj: Any, parts: list[str], value: Any, full: str) -> Any:
    names = {f.name for f in dataclasses.fields(obj)}
    head = parts[0]
    if head not in names:
        raise KeyError(f"unknown analytics setting {full!r}")
    if len(parts) == 1:
        current = getattr(obj, head)
        if dataclasses.is_dataclass(current):
            raise KeyError(f"{full!r} names a group, not a setting")
        cast = type(current)(value) if current is not None else value
        return dataclasses.replace(obj, **{head: cast})
    child = _replace_path(getattr(obj, head), parts[1:], value, full)
    return dataclasses.replace(obj, **{head: child})
