"""Typed, defaulted views of the three custom resources (kubebuilder's `*_types.go`).

A view is built once per reconcile from the object as read (`TradingBot.from_body`) and
is the only place a spec field is read: reconcile, facts, the controller, builders and
the admission webhook take views, never raw dicts. Defaults come from crd_defaults.py,
generated from the schema source (crds/generate.py), so each default is written once.

A body the schema should have refused (stored before a rule existed, written around
the apiserver) raises `SpecError` naming the field and the reason; the reconciler turns
it into a condition (and, for a bot, 0 replicas) instead of crashing.

Adding a gate-relevant TradingBot field: the schema in crds/generate.py (`make crds`),
the field here, the one policy that reads it (gate.py), and a test.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from spy_operator import constants as c
from spy_operator.api.fields import (
    Approval,
    Body,
    Meta,
    Mode,
    SpecError,
    VpnTarget,
    _meta,
    _Spec,
    _status,
    parse_approval,
)

MODES = tuple(m.value for m in Mode)


@dataclass(frozen=True)
class TradingBot:
    meta: Meta
    image: str
    gateway: str
    mode: Mode
    armed: bool
    approval: Approval | None
    strategy: Mapping[str, Any]
    risk: Mapping[str, Any]
    pull_secrets: tuple[str, ...]
    vpn: VpnTarget | None
    resources: Mapping[str, Any]
    status: Mapping[str, Any]
    spec: Mapping[str, Any]  # as read: what the approval webhook signed
    backend_url: str = ""
    token_secret: str = ""  # the backend's audit token (spec.backend.tokenSecretRef)
    token_key: str = ""

    @classmethod
    def from_body(cls, body: Body) -> TradingBot:
        s = _Spec(c.KIND_BOT, body.get("spec"))
        token = s.mapping("backend.tokenSecretRef")
        return cls(
            meta=_meta(c.KIND_BOT, body),
            image=s.text("image"),
            gateway=s.ref("gatewayRef"),
            mode=Mode(s.enum("mode", MODES)),
            # Only a literal true arms: anything else the schema should have refused.
            armed=s.raw("armed") is True,
            approval=parse_approval(s.spec),
            strategy=s.mapping("strategy"),
            risk=s.mapping("risk"),
            pull_secrets=s.pull_secrets(),
            vpn=s.vpn(),
            resources=s.resources(),
            status=_status(body),
            spec=s.spec,
            backend_url=s.text("backend.url"),
            token_secret=str(token.get("name") or ""),
            token_key=s.text("backend.tokenSecretRef.key") if token else "",
        )


@dataclass(frozen=True)
class IBGateway:
    meta: Meta
    image: str
    trading_mode: Mode
    credentials_secret: str
    read_only_api: bool
    api_port: int
    daily_restart_time: str
    timezone: str
    storage_size: str
    storage_class: str
    pull_secrets: tuple[str, ...]
    vpn: VpnTarget | None
    resources: Mapping[str, Any]
    status: Mapping[str, Any]

    @classmethod
    def from_body(cls, body: Body) -> IBGateway:
        s = _Spec(c.KIND_GATEWAY, body.get("spec"))
        return cls(
            meta=_meta(c.KIND_GATEWAY, body),
            image=s.text("image"),
            trading_mode=Mode(s.enum("tradingMode", MODES)),
            credentials_secret=s.ref("credentialsSecretRef"),
            read_only_api=s.flag("readOnlyApi"),
            api_port=s.integer("apiPort", minimum=1),
            daily_restart_time=s.text("dailyRestartTime"),
            timezone=s.text("timezone"),
            storage_size=str(s.raw("storage.size")),
            storage_class=s.text("storage.storageClassName"),
            pull_secrets=s.pull_secrets(),
            vpn=s.vpn(),
            resources=s.resources(),
            status=_status(body),
        )


@dataclass(frozen=True)
class OptionsDetector:
    meta: Meta
    image: str
    gateway: str
    symbol: str
    shards: int
    min_dte: int
    max_dte: int
    strike_percent: float
    market_data_type: str
    thresholds: Mapping[str, Any]
    backend_url: str
    token_secret: str
    token_key: str
    pull_secrets: tuple[str, ...]
    vpn: VpnTarget | None
    resources: Mapping[str, Any]
    status: Mapping[str, Any]
    dividends: tuple[tuple[str, float], ...] = ()  # (exDate, amount)
    projected_quarterly: float | None = None

    @classmethod
    def from_body(cls, body: Body) -> OptionsDetector:
        s = _Spec(c.KIND_DETECTOR, body.get("spec"))
        token = s.mapping("backend.tokenSecretRef")
        return cls(
            meta=_meta(c.KIND_DETECTOR, body),
            image=s.text("image"),
            gateway=s.ref("gatewayRef"),
            symbol=s.text("symbol"),
            shards=s.integer("shards", minimum=1),
            min_dte=s.integer("expiryWindow.minDte", minimum=0),
            max_dte=s.integer("expiryWindow.maxDte", minimum=0),
            strike_percent=s.number("strikeWindow.percent"),
            market_data_type=s.text("marketDataType"),
            thresholds=s.mapping("thresholds"),
            backend_url=s.text("backend.url"),
            token_secret=str(token.get("name") or ""),
            token_key=s.text("backend.tokenSecretRef.key") if token else "",
            pull_secrets=s.pull_secrets(),
            vpn=s.vpn(),
            resources=s.resources(),
            status=_status(body),
            dividends=_dividends(s),
            projected_quarterly=(
                s.number("dividends.projectedQuarterly")
                if s.raw("dividends.projectedQuarterly") is not None
                else None
            ),
        )


def _dividends(s: _Spec) -> tuple[tuple[str, float], ...]:
    raw = s.raw("dividends.schedule") or []
    if not isinstance(raw, list):
        raise SpecError("spec.dividends.schedule", "must be a list")
    out = []
    for i, item in enumerate(raw):
        try:
            out.append((str(item["exDate"]), float(item["amount"])))
        except (KeyError, TypeError, ValueError) as err:
            raise SpecError(f"spec.dividends.schedule[{i}]", "needs exDate and amount") from err
    return tuple(out)


def gateway_ref(body: Body) -> str:
    """The gatewayRef name of a bot or detector body, "" when absent or malformed.

    For indexing referrers (the controller), where a malformed object must not stop
    the others; reconciles use the views, which refuse such an object."""
    spec = body.get("spec")
    ref = spec.get("gatewayRef") if isinstance(spec, Mapping) else None
    name = ref.get("name") if isinstance(ref, Mapping) else None
    return name if isinstance(name, str) else ""


View = TradingBot | IBGateway | OptionsDetector
VIEWS: dict[str, type[TradingBot] | type[IBGateway] | type[OptionsDetector]] = {
    c.KIND_BOT: TradingBot,
    c.KIND_GATEWAY: IBGateway,
    c.KIND_DETECTOR: OptionsDetector,
}


def view(body: Body) -> View:
    """The typed view of any of the three kinds, chosen by `kind`."""
    kind = body.get("kind")
    if kind not in VIEWS:
        raise SpecError("kind", f"must be one of {', '.join(VIEWS)}, not {kind!r}")
    return VIEWS[str(kind)].from_body(body)
