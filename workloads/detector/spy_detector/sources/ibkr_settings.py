"""Settings of the IBKR source, kept apart from ``sources/ibkr.py``.

Who calls this: ``spy_detector.settings`` (built from the environment) and
``sources/ibkr.py`` (which re-exports `IBSettings`). This module must not import
``ib_async``: the settings are read (and ``run --check-config`` validates them) in
processes that never talk to a gateway, and ``service.py`` imports the IBKR source
lazily for the same reason (tests/detector/test_detector_settings.py checks it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from spy_detector.backoff import Backoff

#: ``SPY_IB_MARKET_DATA_TYPE`` names and the TWS ``reqMarketDataType`` codes.
MARKET_DATA_TYPES = {"live": 1, "frozen": 2, "delayed": 3, "delayed-frozen": 4}


@dataclass(frozen=True, slots=True)
class IBSettings:
    host: str = "127.0.0.1"
    port: int = 4002
    client_id: int = 1
    symbol: str = "SPY"
    exchange: str = "SMART"
    currency: str = "USD"
    market_data_type: str = "live"
    max_lines: int = 100  # IB's default allowance; one goes to the underlying
    max_msgs_per_sec: int = 40  # IB disconnects above 50/s
    pacing_burst: int = 4  # messages sent back to back at most
    dte_min: int = 0
    dte_max: int = 60
    strike_range: float = 0.10  # +/- fraction of spot
    dwell: float = 3.0  # max seconds a rotated batch stays subscribed
    snapshot_interval: float = 5.0
    connect_timeout: float = 10.0
    request_timeout: float = 30.0
    generic_ticks: str = "101"  # 101: open interest
    rate: float = 0.04  # continuously compounded; IB does not send one
    #: continuous yield on top of the discrete dividends (SPY_DIVIDENDS): none for SPY
    div_yield: float = 0.0
    backoff: Backoff = field(default_factory=lambda: Backoff(initial=1.0, maximum=60.0))

    def __post_init__(self) -> None:
        if self.market_data_type not in MARKET_DATA_TYPES:
            raise ValueError(
                f"market data type must be one of {sorted(MARKET_DATA_TYPES)},"
                f" got {self.market_data_type!r}"
            )
        if self.max_lines < 2:
            raise ValueError("max_lines must leave at least one line for options")
        if not 1 <= self.max_msgs_per_sec <= 50:
            raise ValueError("max_msgs_per_sec must be in [1, 50] (IB's limit)")
        if not 1 <= self.pacing_burst <= self.max_msgs_per_sec:
            raise ValueError("pacing_burst must be in [1, max_msgs_per_sec]")

    @property
    def option_lines(self) -> int:
        return self.max_lines - 1
