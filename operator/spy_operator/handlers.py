"""kopf wiring: indices (the cache), watch events (-> work queue), start-up and clean-up.

Only event and index handlers are used: kopf then stores nothing on the objects (no
annotations, no finalizers), and every decision is made by the level-triggered
reconcilers in reconcile.py, run by controller.py.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Mapping
from typing import Any, cast

import kopf
from prometheus_client import start_http_server

from spy_operator import constants as c
from spy_operator.context import Context
from spy_operator.controller import Controller
from spy_operator.kube import Kube
from spy_operator.leader import LeaderElector
from spy_operator.pods import gateway_pod_facts
from spy_operator.pullsecrets import secret_facts
from spy_operator.vpn import VpnProber
from spy_operator.webhook import key_from_env, policy_from_env
from spy_operator.webhook import serve as serve_webhook
from spy_operator.world import World

log = logging.getLogger("spy_operator")


def _owned(meta: Any, **_: Any) -> bool:
    """Children are ours by controller ownerReference, not by a label anyone can remove."""
    return any(
        ref.get("apiVersion") == c.API_VERSION and ref.get("controller")
        for ref in meta.get("ownerReferences") or []
    )


def operator_namespace() -> str:
    return os.environ.get("SPY_OPERATOR_NAMESPACE", c.DEFAULT_OPERATOR_NAMESPACE)


def _is_halt(name: str | None, namespace: str | None, **_: Any) -> bool:
    return name == c.HALT_CONFIGMAP and namespace == operator_namespace()


class NoDiffBase(kopf.DiffBaseStorage):
    """kopf keeps a deep copy of every object's essence for on.create/update handlers.

    This operator registers none (only index and event handlers, by design), so the
    copy is pure cost on every watch event; skipping it keeps the watch path cheap.
    Adding a change-detecting handler requires going back to kopf's default storage.
    """

    def build(self, *, body: kopf.Body, extra_fields: Any = None) -> kopf.BodyEssence:
        return cast(kopf.BodyEssence, {})

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        return None


def _connection(settings: kopf.OperatorSettings) -> kopf.ConnectionInfo:
    info = kopf.login_with_kubeconfig(settings=settings) or kopf.login_with_service_account(
        settings=settings
    )
    if info is None:
        raise kopf.PermanentError("no kubeconfig and no in-cluster service account found")
    return info


def build_controller(kube: Kube, env: Mapping[str, str]) -> Controller:
    """The Context, LeaderElector and Controller as the operator runs them, wired to
    `kube` (writes need the Lease), from the environment. startup() and the fast tier
    both build the operator here."""
    ctx = Context(
        kube=kube,
        world=World(),
        prober=VpnProber(ttl=float(env.get("SPY_VPN_PROBE_TTL", "5"))),
        clock=lambda: dt.datetime.now(dt.UTC),
        operator_namespace=env.get("SPY_OPERATOR_NAMESPACE", c.DEFAULT_OPERATOR_NAMESPACE),
        vpn_recheck_seconds=float(env.get("SPY_VPN_RECHECK_SECONDS", "5")),
    )
    ctx.approval_key = key_from_env()
    leader = None
    if env.get("SPY_LEADER_ELECTION", "true") != "false":
        leader = LeaderElector(
            kube,
            ctx.operator_namespace,
            c.LEASE_NAME,
            lease_seconds=float(env.get("SPY_LEASE_SECONDS", "15")),
            renew_seconds=float(env.get("SPY_LEASE_RENEW_SECONDS", "2")),
            host=env.get("POD_NAME") or None,
        )
    controller = Controller(
        ctx,
        leader,
        workers=int(env.get("SPY_WORKERS", "8")),
        resync_seconds=float(env.get("SPY_RESYNC_SECONDS", "30")),
    )
    if leader is not None:
        elected = leader
        leader.on_elected = controller.enqueue_all
        kube.may_write = lambda: elected.is_leader
    return controller


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    # Our own prefixes; no kopf annotations or finalizers are written with these handlers.
    settings.persistence.finalizer = f"{c.ANNOTATION_PREFIX}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(
        prefix=c.ANNOTATION_PREFIX
    )
    settings.persistence.diffbase_storage = NoDiffBase()
    settings.posting.enabled = False  # conditions carry the state; Events would be churn
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.networking.connect_timeout = 10

    kube = Kube.from_connection(_connection(settings))
    controller = build_controller(kube, os.environ)
    ctx = controller.ctx
    webhook_port = int(os.environ.get("SPY_WEBHOOK_PORT", "0"))
    memo.webhook = None
    if webhook_port and ctx.approval_key is not None:
        memo.webhook = await serve_webhook(
            webhook_port,
            os.environ["SPY_WEBHOOK_CERT"],
            os.environ["SPY_WEBHOOK_KEY"],
            policy_from_env(),
            ctx.approval_key,
            os.environ.get("SPY_WEBHOOK_HOST", "0.0.0.0"),
        )
    kube.relogin = lambda: _connection(settings).token
    memo.controller = controller
    controller.start()
    port = int(os.environ.get("SPY_METRICS_PORT", "8080"))
    if port:
        start_http_server(port, addr=os.environ.get("SPY_METRICS_ADDR", "0.0.0.0"))
    log.info("operator started", extra={"namespace": operator_namespace(), "metrics_port": port})


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    controller: Controller = memo.controller
    if memo.get("webhook") is not None:
        await memo.webhook.cleanup()
    await controller.stop()
    await controller.ctx.kube.close()


# ----------------------------------------------------------------------- indices
# Each maps (namespace, name) -> the object (or derived facts for Secrets). Async so
# kopf calls them on the loop instead of through its thread pool.


@kopf.index(c.GROUP, c.VERSION, "tradingbots")
async def idx_tradingbots(namespace: str | None, name: str, body: kopf.Body, **_: Any) -> Any:
    return {(namespace or "", name): dict(body)}


@kopf.index(c.GROUP, c.VERSION, "ibgateways")
async def idx_ibgateways(namespace: str | None, name: str, body: kopf.Body, **_: Any) -> Any:
    return {(namespace or "", name): dict(body)}


@kopf.index(c.GROUP, c.VERSION, "optionsdetectors")
async def idx_optionsdetectors(namespace: str | None, name: str, body: kopf.Body, **_: Any) -> Any:
    return {(namespace or "", name): dict(body)}


@kopf.index("apps", "v1", "deployments", when=_owned)
async def idx_deployments(namespace: str | None, name: str, body: kopf.Body, **_: Any) -> Any:
    return {(namespace or "", name): dict(body)}


@kopf.index("apps", "v1", "statefulsets", when=_owned)
async def idx_statefulsets(namespace: str | None, name: str, body: kopf.Body, **_: Any) -> Any:
    return {(namespace or "", name): dict(body)}


@kopf.index("", "v1", "services", when=_owned)
async def idx_services(namespace: str | None, name: str, body: kopf.Body, **_: Any) -> Any:
    return {(namespace or "", name): dict(body)}


@kopf.index("", "v1", "secrets")
async def idx_secrets(namespace: str | None, name: str, body: kopf.Body, **_: Any) -> Any:
    # Only derived facts are kept: no secret value stays in memory or reaches a log.
    return {(namespace or "", name): secret_facts(body)}


BOT_LABEL = {c.LABEL_COMPONENT: c.COMPONENT[c.KIND_BOT]}
GATEWAY_LABEL = {c.LABEL_COMPONENT: c.COMPONENT[c.KIND_GATEWAY]}


@kopf.index("apps", "v1", "deployments", labels=BOT_LABEL)
async def idx_bot_deployments(namespace: str | None, name: str, body: kopf.Body, **_: Any) -> Any:
    return {(namespace or "", name): dict(body)}


@kopf.index("", "v1", "pods", labels=GATEWAY_LABEL)
async def idx_gateway_pods(namespace: str | None, body: kopf.Body, **_: Any) -> Any:
    facts = gateway_pod_facts(body)
    return {(namespace or "", facts.gateway): facts}


@kopf.index("", "v1", "configmaps", when=_is_halt)
async def idx_halt(body: kopf.Body, **_: Any) -> Any:
    return {"halt": {"metadata": dict(body.metadata), "data": dict(body.get("data") or {})}}


# ------------------------------------------------------------------------ events
# Async on purpose: kopf runs sync handlers in threads, and the work queue belongs to
# the event loop.


def _controller(memo: Any, kwargs: dict[str, Any]) -> Controller:
    controller: Controller = memo.controller
    controller.mark_synced(kwargs)  # kopf calls no handler before all indices are filled
    return controller


@kopf.on.event(c.GROUP, c.VERSION, "tradingbots")
async def on_tradingbot(namespace: str | None, name: str, memo: Any, **kwargs: Any) -> None:
    _controller(memo, kwargs).on_custom_resource(c.KIND_BOT, namespace or "", name)


@kopf.on.event(c.GROUP, c.VERSION, "ibgateways")
async def on_ibgateway(namespace: str | None, name: str, memo: Any, **kwargs: Any) -> None:
    _controller(memo, kwargs).on_custom_resource(c.KIND_GATEWAY, namespace or "", name)


@kopf.on.event(c.GROUP, c.VERSION, "optionsdetectors")
async def on_optionsdetector(namespace: str | None, name: str, memo: Any, **kwargs: Any) -> None:
    _controller(memo, kwargs).on_custom_resource(c.KIND_DETECTOR, namespace or "", name)


@kopf.on.event("apps", "v1", "deployments", when=_owned)
@kopf.on.event("apps", "v1", "statefulsets", when=_owned)
@kopf.on.event("", "v1", "services", when=_owned)
async def on_child(body: kopf.Body, type: str | None, memo: Any, **kwargs: Any) -> None:
    _controller(memo, kwargs).on_child(dict(body), deleted=type == "DELETED")


@kopf.on.event("apps", "v1", "deployments", labels=BOT_LABEL)
async def on_bot_deployment(body: kopf.Body, type: str | None, memo: Any, **kwargs: Any) -> None:
    _controller(memo, kwargs).on_bot_deployment(dict(body), deleted=type == "DELETED")


@kopf.on.event("", "v1", "pods", labels=GATEWAY_LABEL)
async def on_gateway_pod(namespace: str | None, body: kopf.Body, memo: Any, **kwargs: Any) -> None:
    gateway = gateway_pod_facts(body).gateway
    _controller(memo, kwargs).on_custom_resource(c.KIND_GATEWAY, namespace or "", gateway)


@kopf.on.event("", "v1", "secrets")
async def on_secret(namespace: str | None, name: str, memo: Any, **kwargs: Any) -> None:
    _controller(memo, kwargs).on_secret(namespace or "", name)


@kopf.on.event("", "v1", "configmaps", when=_is_halt)
async def on_halt(memo: Any, **kwargs: Any) -> None:
    controller = _controller(memo, kwargs)
    log.warning("global halt changed; reconciling every bot")
    controller.on_halt()
