"""`TapeConfig`: the parameters of `TapeMarket` (see `.tape` for the model), its
regimes and the start time of each.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

REGIMES = ("normal", "ex_dividend", "spot_lag", "open")
STARTS = {
    "normal": datetime(2026, 11, 24, 15, 30, tzinfo=UTC),
    "ex_dividend": datetime(2026, 12, 11, 15, 30, tzinfo=UTC),  # ex-date 2026-12-18
    "spot_lag": datetime(2026, 11, 24, 15, 30, tzinfo=UTC),
    "open": datetime(2026, 11, 24, 14, 30, 5, tzinfo=UTC),  # 09:30:05 New York (EST)
}


@dataclass(frozen=True)
class TapeConfig:
    regime: str = "normal"
    start: datetime | None = None  # None: the regime's start
    spot: float = 600.0
    rate: float = 0.043
    dividend: float = 1.90
    published_dividend: float = 1.85
    dte_max: int = 60
    strike_range: float = 0.10
    interval_s: float = 5.0
    spot_vol: float = 0.14
    atm_vol_short: float = 0.12
    atm_vol_long: float = 0.18
    atm_decay: float = 0.25
    ssvi_rho: float = -0.7
    ssvi_eta: float = 1.0
    ssvi_gamma: float = 0.5
    quote_age_mean_s: float = 0.4
    quote_age_max_s: float = 3.0
    lag_move: float = 0.15
    open_spread_mult: float = 3.0
    bad_quote_rate: float = 0.002
    spot_history: bool = True
    magnitude_scale: float = 1.0
    tree_steps: int = 80
    symbol: str = "SPY"
    #: continuous yield: none (the dividend is discrete); `InjectContext` reads it
    div_yield: float = 0.0

    def __post_init__(self) -> None:
        if self.regime not in REGIMES:
            raise ValueError(f"regime must be one of {REGIMES}, got {self.regime!r}")
