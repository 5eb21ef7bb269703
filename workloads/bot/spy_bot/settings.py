"""The bot's configuration, read once from the environment.

The operator's Deployment sets these variables (docs/bot.md lists every one with its
source); ``python -m spy_bot run`` calls ``Settings.from_env(os.environ)``. Nothing else
in the package reads the environment. A bad value fails at start-up naming the variable
and the field (a bad CR shows as a crash-looping pod with a clear log line). The
typed reads and ``SettingsError`` are spy_runtime.env's, shared with the detector.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from spy_runtime.env import EnvReader, SettingsError

from spy_bot.risk import LimitsError, RiskLimits, parse_limits
from spy_bot.strategy import DEFAULT_RULES, Strategy, StrategyError, parse_strategy

MODES = ("paper", "live")
__all__ = ["MODES", "Settings", "SettingsError"]


@dataclass(frozen=True, slots=True)
class Settings:
    bot_name: str = ""
    bot_namespace: str = ""
    mode: str = "paper"
    ib_host: str = "127.0.0.1"
    ib_port: int = 4002
    ib_client_id: int = 1
    ib_timeout: float = 5.0
    strategy: Strategy = field(default_factory=lambda: Strategy("default", DEFAULT_RULES))
    limits: RiskLimits = field(default_factory=RiskLimits)
    backend_url: str = ""
    backend_token: str = field(default="", repr=False)  # the audit API's; never logged
    symbol: str = "SPY"
    kubeconfig: str = ""  # empty: in-cluster service account
    http_host: str = "0.0.0.0"  # probes and Prometheus reach the pod IP
    http_port: int = 8080
    audit_file: str = ""  # empty: audit to stdout only
    armed_check_seconds: float = 2.0
    signal_max_age: float = 120.0  # older signals are recorded, never traded
    backfill_overlap: float = 5.0
    log_level: str = "INFO"

    @property
    def bot(self) -> str:
        return f"{self.bot_namespace}/{self.bot_name}"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        r = EnvReader(env)
        name = r.text("SPY_TRADINGBOT_NAME", "")
        namespace = r.text("SPY_TRADINGBOT_NAMESPACE", "")
        if not name or not namespace:
            raise SettingsError(
                "SPY_TRADINGBOT_NAME and SPY_TRADINGBOT_NAMESPACE are required: the bot "
                "reads its own TradingBot before every order"
            )
        mode = r.text("SPY_BOT_MODE", "paper")
        if mode not in MODES:
            raise SettingsError(f"SPY_BOT_MODE must be one of {MODES}, got {mode!r}")
        backend = r.text("SPY_BACKEND_URL", "")
        if not backend:
            raise SettingsError("SPY_BACKEND_URL is required: signals come from the backend's hub")
        try:
            strategy = parse_strategy(r.json("SPY_STRATEGY"))
            limits = parse_limits(r.json("SPY_RISK"))
        except (StrategyError, LimitsError) as exc:
            raise SettingsError(f"{exc}") from exc
        return cls(
            bot_name=name,
            bot_namespace=namespace,
            mode=mode,
            ib_host=r.text("SPY_IB_HOST", "127.0.0.1"),
            ib_port=r.integer("SPY_IB_PORT", 4002),
            ib_client_id=r.integer("SPY_IB_CLIENT_ID", 1),
            ib_timeout=r.number("SPY_IB_TIMEOUT", 5.0),
            strategy=strategy,
            limits=limits,
            backend_url=backend.rstrip("/"),
            backend_token=r.text("SPY_BACKEND_TOKEN", ""),
            symbol=r.text("SPY_SYMBOL", "SPY"),
            kubeconfig=r.text("KUBECONFIG", ""),
            http_host=r.text("SPY_HTTP_HOST", "0.0.0.0"),
            http_port=r.integer("SPY_HTTP_PORT", 8080),
            audit_file=r.text("SPY_AUDIT_FILE", ""),
            armed_check_seconds=r.number("SPY_ARMED_CHECK_SECONDS", 2.0),
            signal_max_age=r.number("SPY_SIGNAL_MAX_AGE_SECONDS", 120.0),
            log_level=r.text("SPY_LOG_LEVEL", "INFO").upper(),
        )

    def redacted(self) -> dict[str, Any]:
        """For the start-up log line (nothing here is secret)."""
        return {
            "bot": self.bot,
            "mode": self.mode,
            "ib": f"{self.ib_host}:{self.ib_port} client {self.ib_client_id}",
            "backend_url": self.backend_url,
            "symbol": self.symbol,
            "strategy": self.strategy.name,
            "rules": [r.name for r in self.strategy.rules],
            "kube": self.kubeconfig or "in-cluster",
            "http": f"{self.http_host}:{self.http_port}",
            "audit_file": self.audit_file or None,
            "audit_to_backend": bool(self.backend_token),
        }
