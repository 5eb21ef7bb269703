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

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from spy_operator import constants as c
from spy_operator.crd_defaults import DEFAULTS

Body = Mapping[str, Any]


class SpecError(ValueError):
    """A field the schema should have refused: `field` is its path, `reason` why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class Mode(StrEnum):
    PAPER = "paper"
    LIVE = "live"


@dataclass(frozen=True)
class Approval:
    approved_by: str | None
    reason: str | None
    expires_at: dt.datetime | None
    invalid: str | None = None  # why expiresAt could not be read, if it could not


@dataclass(frozen=True)
class VpnTarget:
    """spec.vpn: a TCP probe across the tunnel (vpn.py runs it)."""

    host: str
    port: int
    timeout: float
    required: bool


@dataclass(frozen=True)
class Meta:
    kind: str
    namespace: str
    name: str
    uid: str
    generation: int
    creation_timestamp: str
    deleting: bool
    annotations: Mapping[str, str]

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.kind, self.namespace, self.name)


def parse_time(value: Any) -> dt.datetime | None:
    """RFC 3339 -> aware datetime; None when absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    return parsed


def parse_approval(spec: Body) -> Approval | None:
    """spec.approval as the gate reads it; an unreadable expiresAt is kept as `invalid`."""
    raw = spec.get("approval")
    if not isinstance(raw, dict):
        return None
    expires_raw = raw.get("expiresAt")
    expires = parse_time(expires_raw)
    invalid = None
    if expires_raw is not None and expires is None:
        invalid = f"approval.expiresAt {expires_raw!r} is not an RFC 3339 time with a zone"
    approved_by = raw.get("approvedBy")
    reason = raw.get("reason")
    return Approval(
        approved_by=approved_by if isinstance(approved_by, str) and approved_by else None,
        reason=reason if isinstance(reason, str) and reason.strip() else None,
        expires_at=expires,
        invalid=invalid,
    )


class _Spec:
    """Reads one object's spec with the schema's defaults and type checks."""

    def __init__(self, kind: str, spec: Any) -> None:
        if not isinstance(spec, Mapping):
            raise SpecError("spec", "must be an object")
        self.kind = kind
        self.spec = spec

    def raw(self, path: str) -> Any:
        node: Any = self.spec
        for part in path.split("."):
            node = node.get(part) if isinstance(node, Mapping) else None
        if node is None:
            return DEFAULTS[self.kind].get(f"spec.{path}")
        return node

    def text(self, path: str, required: bool = False) -> str:
        value = self.raw(path)
        if value is None:
            if required:
                raise SpecError(f"spec.{path}", "is required")
            return ""
        if not isinstance(value, str):
            raise SpecError(f"spec.{path}", f"must be a string, not {type(value).__name__}")
        text: str = value
        return text

    def integer(self, path: str, minimum: int | None = None) -> int:
        value = self.raw(path)
        if isinstance(value, bool) or not isinstance(value, int):
            raise SpecError(f"spec.{path}", f"must be an integer, not {value!r}")
        if minimum is not None and value < minimum:
            raise SpecError(f"spec.{path}", f"must be >= {minimum}, not {value}")
        return value

    def number(self, path: str) -> float:
        value = self.raw(path)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise SpecError(f"spec.{path}", f"must be a number, not {value!r}")
        return float(value)

    def flag(self, path: str) -> bool:
        value = self.raw(path)
        if not isinstance(value, bool):
            raise SpecError(f"spec.{path}", f"must be true or false, not {value!r}")
        return value

    def mapping(self, path: str) -> Mapping[str, Any]:
        value = self.raw(path)
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise SpecError(f"spec.{path}", "must be an object")
        return value

    def enum(self, path: str, allowed: tuple[str, ...]) -> str:
        value = self.text(path)
        if value not in allowed:
            raise SpecError(f"spec.{path}", f"must be one of {', '.join(allowed)}, not {value!r}")
        return value

    def ref(self, path: str) -> str:
        name = self.mapping(path).get("name")
        if not isinstance(name, str) or not name:
            raise SpecError(f"spec.{path}.name", "is required")
        return name

    def pull_secrets(self) -> tuple[str, ...]:
        refs = self.raw("imagePullSecrets") or []
        if not isinstance(refs, list):
            raise SpecError("spec.imagePullSecrets", "must be a list")
        return tuple(str(r["name"]) for r in refs if isinstance(r, Mapping) and r.get("name"))

    def vpn(self) -> VpnTarget | None:
        raw = self.mapping("vpn")
        if not raw.get("host") or not raw.get("port"):
            return None
        try:
            return VpnTarget(
                host=str(raw["host"]),
                port=int(raw["port"]),
                timeout=float(
                    raw.get("timeoutSeconds", DEFAULTS[self.kind]["spec.vpn.timeoutSeconds"])
                ),
                required=bool(raw.get("required", DEFAULTS[self.kind]["spec.vpn.required"])),
            )
        except (TypeError, ValueError) as err:
            raise SpecError("spec.vpn", str(err)) from err

    def resources(self) -> dict[str, dict[str, Any]]:
        res = self.mapping("resources")
        return {k: dict(v) for k, v in res.items() if k in ("requests", "limits") and v}


def _meta(kind: str, body: Body) -> Meta:
    meta = body.get("metadata") or {}
    try:
        generation = int(meta.get("generation") or 0)
    except (TypeError, ValueError):
        generation = 0
    return Meta(
        kind=kind,
        namespace=str(meta.get("namespace") or ""),
        name=str(meta.get("name") or ""),
        uid=str(meta.get("uid") or ""),
        generation=generation,
        creation_timestamp=str(meta.get("creationTimestamp") or ""),
        deleting=bool(meta.get("deletionTimestamp")),
        annotations=dict(meta.get("annotations") or {}),
    )


def _status(body: Body) -> Mapping[str, Any]:
    status = body.get("status")
    return status if isinstance(status, Mapping) else {}


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

    @classmethod
    def from_body(cls, body: Body) -> TradingBot:
        s = _Spec(c.KIND_BOT, body.get("spec"))
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
        )


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
