"""The detector's configuration, read once from the environment.

The operator's StatefulSet sets these variables (docs/detector.md lists every one);
``python -m spy_detector run`` calls ``Settings.from_env(os.environ)``. Nothing else
in the package reads the environment. Invalid values fail at start-up with a message
naming the variable, so a bad CR shows up as a crash-looping pod with a clear log.
The typed reads and ``SettingsError`` are spy_runtime.env's, shared with the bot.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from spy_analytics.dividends import DividendSchedule
from spy_runtime.env import EnvReader, SettingsError

from spy_detector.backoff import Backoff
from spy_detector.sharding import ShardSpec
from spy_detector.sources.ibkr_settings import MARKET_DATA_TYPES, IBSettings

SOURCES = ("ibkr", "replay", "synthetic")
#: SPY_DIVIDEND_QUARTERLY default per symbol: SPY's recent quarterly cash dividend
#: (USD 1.70-1.97 a share in 2024-2025), projected on its ex-date calendar.
DEFAULT_QUARTERLY = {"SPY": 1.85}
__all__ = ["DEFAULT_QUARTERLY", "SOURCES", "Settings", "SettingsError"]


@dataclass(frozen=True, slots=True)
class Settings:
    source: str = "ibkr"
    symbol: str = "SPY"
    shard: ShardSpec = field(default_factory=ShardSpec)
    ib: IBSettings = field(default_factory=IBSettings)
    backend_url: str = ""
    backend_token: str = ""
    publish_buffer: int = 50_000
    http_host: str = "0.0.0.0"  # probes and Prometheus reach the pod IP
    http_port: int = 8080
    replay_files: tuple[str, ...] = ()
    replay_speed: float = 0.0
    replay_loop: bool = False
    synthetic_seed: int = 7
    synthetic_interval: float = 5.0
    synthetic_snapshots: int = 0  # 0 = forever
    record_file: str = ""
    thresholds: dict[str, Any] = field(default_factory=dict)
    stale_after: float = 120.0  # /readyz fails when no snapshot was analysed for this long
    log_level: str = "INFO"
    #: declared cash dividends (SPY_DIVIDENDS), overriding the projection of their quarter
    dividends: DividendSchedule = field(default_factory=DividendSchedule)
    #: USD per share projected on SPY's quarterly ex-dates (SPY_DIVIDEND_QUARTERLY); 0: none
    dividend_quarterly: float = 0.0

    def dividend_schedule(self, today: date) -> DividendSchedule:
        """The schedule the analytics use on ``today``: the quarterly projection for a
        year ahead with the declared dividends in place of their quarter's."""
        projected = DividendSchedule.spy_projected(today, self.dividend_quarterly, 1.0)
        return projected.merged(self.dividends)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        r = EnvReader(env)
        source = r.text("SPY_SOURCE", "ibkr")
        if source not in SOURCES:
            raise SettingsError(f"SPY_SOURCE must be one of {SOURCES}, got {source!r}")
        symbol = r.text("SPY_SYMBOL", "SPY")
        try:
            shard = ShardSpec.from_env(env)
        except ValueError as exc:
            raise SettingsError(str(exc)) from exc
        ib = _ib_settings(r, source, symbol, shard)
        backend_url = r.text("SPY_BACKEND_URL", "")
        token = _backend_token(r)
        if backend_url and not token:
            raise SettingsError("SPY_BACKEND_URL is set but SPY_BACKEND_TOKEN is empty")
        replay = tuple(p for p in r.text("SPY_REPLAY_FILE", "").split(",") if p)
        if source == "replay" and not replay:
            raise SettingsError("SPY_REPLAY_FILE is required with SPY_SOURCE=replay")
        thresholds = _thresholds(r)
        dividends, quarterly = _dividends(r, symbol)
        return cls(
            dividends=dividends,
            dividend_quarterly=quarterly,
            source=source,
            symbol=symbol,
            shard=shard,
            ib=ib,
            backend_url=backend_url,
            backend_token=token,
            publish_buffer=r.integer("SPY_PUBLISH_BUFFER", 50_000),
            http_host=r.text("SPY_HTTP_HOST", "0.0.0.0"),
            http_port=r.integer("SPY_HTTP_PORT", 8080),
            replay_files=replay,
            replay_speed=r.number("SPY_REPLAY_SPEED", 0.0),
            replay_loop=r.flag("SPY_REPLAY_LOOP", False),
            synthetic_seed=r.integer("SPY_SYNTHETIC_SEED", 7),
            synthetic_interval=r.number("SPY_SYNTHETIC_INTERVAL", 5.0),
            synthetic_snapshots=r.integer("SPY_SYNTHETIC_SNAPSHOTS", 0),
            record_file=r.text("SPY_RECORD_FILE", ""),
            thresholds=thresholds,
            stale_after=r.number("SPY_STALE_AFTER", 120.0),
            log_level=r.text("SPY_LOG_LEVEL", "INFO").upper(),
        )

    def analytics_overrides(self) -> dict[str, Any]:
        """Analytics settings for this source, then the CR's ``SPY_THRESHOLDS`` on top.

        The live gateway sends open interest (generic tick 101) separately from the
        quote and not for every contract, so its quotes are kept for IV, smiles and
        price rules while OI is missing instead of being skipped as bad.
        """
        base: dict[str, Any] = {}
        if self.source == "ibkr":
            base["quality.skip_missing_volume_oi"] = False
        return {**base, **self.thresholds}

    def redacted(self) -> dict[str, Any]:
        """For the start-up log line: everything but the token."""
        return {
            "source": self.source,
            "symbol": self.symbol,
            "shard": f"{self.shard.index}/{self.shard.count}",
            "ib": f"{self.ib.host}:{self.ib.port} client {self.ib.client_id}",
            "market_data_type": self.ib.market_data_type,
            "backend_url": self.backend_url or None,
            "backend_token": "***" if self.backend_token else None,
            "http": f"{self.http_host}:{self.http_port}",
            "dividends": ",".join(f"{d.ex_date}:{d.amount:g}" for d in self.dividends.dividends),
            "dividend_quarterly": self.dividend_quarterly,
        }


def _ib_settings(r: EnvReader, source: str, symbol: str, shard: ShardSpec) -> IBSettings:
    mdt = r.text("SPY_IB_MARKET_DATA_TYPE", "live")
    if mdt not in MARKET_DATA_TYPES:
        raise SettingsError(
            f"SPY_IB_MARKET_DATA_TYPE must be one of {sorted(MARKET_DATA_TYPES)}, got {mdt!r}"
        )
    # All pods of a StatefulSet share one template, so the operator gives the set a
    # block of ids (SPY_IB_CLIENT_ID_BASE) and each shard takes base + its index.
    if r.has("SPY_IB_CLIENT_ID"):
        client_id = r.integer("SPY_IB_CLIENT_ID", 1)
    elif r.has("SPY_IB_CLIENT_ID_BASE"):
        client_id = r.integer("SPY_IB_CLIENT_ID_BASE", 1) + shard.index
    elif source == "ibkr":
        raise SettingsError(
            "SPY_IB_CLIENT_ID or SPY_IB_CLIENT_ID_BASE is required with SPY_SOURCE=ibkr"
        )
    else:
        client_id = 1
    try:
        return IBSettings(
            host=r.text("SPY_IB_HOST", "127.0.0.1"),
            port=r.integer("SPY_IB_PORT", 4002),
            client_id=client_id,
            symbol=symbol,
            market_data_type=mdt,
            max_lines=r.integer("SPY_IB_MAX_LINES", 100),
            max_msgs_per_sec=r.integer("SPY_IB_MAX_MSGS_PER_SEC", 40),
            dte_min=r.integer("SPY_DTE_MIN", 0),
            dte_max=r.integer("SPY_DTE_MAX", 60),
            strike_range=r.number("SPY_STRIKE_RANGE", 0.10),
            dwell=r.number("SPY_IB_DWELL", 3.0),
            snapshot_interval=r.number("SPY_SNAPSHOT_INTERVAL", 5.0),
            rate=r.number("SPY_RATE", 0.04),
            div_yield=r.number("SPY_DIV_YIELD", 0.0),
            backoff=Backoff(
                initial=r.number("SPY_IB_BACKOFF_INITIAL", 1.0),
                maximum=r.number("SPY_IB_BACKOFF_MAX", 60.0),
            ),
        )
    except ValueError as exc:
        raise SettingsError(str(exc)) from exc


def _backend_token(r: EnvReader) -> str:
    """SPY_BACKEND_TOKEN, else the contents of SPY_BACKEND_TOKEN_FILE."""
    token = r.text("SPY_BACKEND_TOKEN", "")
    token_file = r.text("SPY_BACKEND_TOKEN_FILE", "")
    if not token and token_file:
        try:
            token = Path(token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SettingsError(
                f"SPY_BACKEND_TOKEN_FILE {token_file!r} cannot be read: {exc.strerror or exc}"
            ) from exc
    return token


def _thresholds(r: EnvReader) -> dict[str, Any]:
    thresholds = r.json("SPY_THRESHOLDS")
    if not isinstance(thresholds, dict):
        raise SettingsError("SPY_THRESHOLDS must be a JSON object of dotted paths")
    return thresholds


def _dividends(r: EnvReader, symbol: str) -> tuple[DividendSchedule, float]:
    """(SPY_DIVIDENDS, SPY_DIVIDEND_QUARTERLY with the symbol's default)."""
    try:
        dividends = DividendSchedule.parse(r.text("SPY_DIVIDENDS", ""))
    except ValueError as exc:
        raise SettingsError(f"SPY_DIVIDENDS: {exc}") from exc
    quarterly = r.number("SPY_DIVIDEND_QUARTERLY", DEFAULT_QUARTERLY.get(symbol, 0.0))
    if not (math.isfinite(quarterly) and quarterly >= 0.0):
        raise SettingsError(f"SPY_DIVIDEND_QUARTERLY must be a number >= 0, got {quarterly}")
    return dividends, quarterly
