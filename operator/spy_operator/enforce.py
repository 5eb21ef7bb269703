"""Enforcing the gate on bot Deployments with writes that can only lower replicas.

Everything here goes through the Deployment's /scale subresource (replicas only), so
a refused pod template, a foreign field or an admission policy on the Deployment
itself cannot block a scale-down, and any synced replica may run it, leader or not:

* `lower_to`: the first write of every bot reconcile, and the fail-closed path;
* `floor_allowance`: what the gate allows from the cache alone; 0 on any error;
* `halt_all`: a global halt scales every bot-labelled Deployment to 0 in parallel
  (bounded), before any status is written;
* `stop_stray`: a Deployment with the bot label but no owning TradingBot (left by
  `--cascade=orphan`, or a copy) is kept at 0.

Called by reconcile.py and controller.py.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Mapping
from typing import Any

from spy_operator import builders, metrics
from spy_operator import constants as c
from spy_operator.api import TradingBot
from spy_operator.context import Context, Outcome
from spy_operator.facts import bot_decision
from spy_operator.kube import ApiError
from spy_operator.world import Body, World

log = logging.getLogger("spy_operator.enforce")

HALT_CONCURRENCY = 32


def replicas_of(deployment: Mapping[str, Any] | None) -> int:
    try:
        return int(((deployment or {}).get("spec") or {}).get("replicas") or 0)
    except (TypeError, ValueError):
        return 1  # unreadable: assume it runs, so it is lowered


def bot_deployment(ctx: Context, namespace: str, name: str) -> Body | None:
    """The bot's own Deployment as last seen (our write's reply, else the watch)."""
    dep_name = builders.bot_deployment_name(name)
    return ctx.world.get(World.DEPLOYMENTS, (namespace, dep_name)) or ctx.world.get(
        World.BOT_DEPLOYMENTS, (namespace, dep_name)
    )


async def lower_to(
    ctx: Context, deployment: Body | None, allowed: int, outcome: Outcome
) -> Body | None:
    """Scale `deployment` down to `allowed` if it runs more; returns it as it now is."""
    if deployment is None or replicas_of(deployment) <= allowed:
        return deployment
    meta = deployment["metadata"]
    ns, name = meta["namespace"], meta["name"]
    scale = await ctx.kube.scale(ns, name, allowed, lowering=True)
    outcome.writes += 1
    updated = copy.deepcopy(deployment)
    updated.setdefault("spec", {})["replicas"] = allowed
    version = (scale.get("metadata") or {}).get("resourceVersion")
    if version:
        updated["metadata"]["resourceVersion"] = version
    if ctx.world.get(World.DEPLOYMENTS, (ns, name)) is not None:
        ctx.world.remember(World.DEPLOYMENTS, (ns, name), updated)
    log.warning(
        "bot deployment lowered",
        extra={"deployment": f"{ns}/{name}", "found": replicas_of(deployment), "to": allowed},
    )
    return updated


def floor_allowance(ctx: Context, namespace: str, name: str) -> int:
    """Replicas the gate allows the bot from the cache alone; 0 on any error (fail
    closed: a bot whose decision cannot be computed does not trade)."""
    try:
        body = ctx.world.get(World.BOTS, (namespace, name))
        if body is None or body["metadata"].get("deletionTimestamp"):
            return 0
        bot = TradingBot.from_body(body)
        decision, _ = bot_decision(ctx, bot, ctx.clock(), Outcome())
        return decision.replicas
    except Exception:
        # Anything at all: the floor is then 0. Logged with the traceback.
        log.exception("gate floor could not be computed; using 0", extra={"bot": name})
        return 0


def _owned_by_a_bot(ctx: Context, deployment: Mapping[str, Any]) -> bool:
    """True when a TradingBot in the cache owns it by uid and it has that bot's name."""
    meta = deployment.get("metadata") or {}
    for ref in meta.get("ownerReferences") or []:
        if ref.get("apiVersion") != c.API_VERSION or ref.get("kind") != c.KIND_BOT:
            continue
        bot = ctx.world.get(World.BOTS, (meta.get("namespace", ""), ref.get("name", "")))
        if (
            bot is not None
            and bot["metadata"].get("uid") == ref.get("uid")
            and builders.bot_deployment_name(ref.get("name", "")) == meta.get("name")
        ):
            return True
    return False


def strays(ctx: Context) -> list[tuple[str, str]]:
    """(namespace, name) of bot-labelled Deployments no TradingBot owns."""
    return [
        (dep["metadata"]["namespace"], dep["metadata"]["name"])
        for dep in ctx.world.values(World.BOT_DEPLOYMENTS)
        if not _owned_by_a_bot(ctx, dep)
    ]


async def stop_stray(ctx: Context, namespace: str, name: str) -> Outcome:
    outcome = Outcome()
    dep = ctx.world.get(World.BOT_DEPLOYMENTS, (namespace, name))
    if dep is None or _owned_by_a_bot(ctx, dep) or replicas_of(dep) == 0:
        return outcome
    metrics.STRAY_BOT_DEPLOYMENTS.inc()
    log.warning("stray bot deployment running; stopping it", extra={"deployment": name})
    await lower_to(ctx, dep, 0, outcome)
    return outcome


async def halt_all(ctx: Context) -> int:
    """Scale every running bot-labelled Deployment to 0 at once (bounded); returns how
    many were lowered. Failures are logged; the per-bot reconciles retry them."""
    running = [d for d in ctx.world.values(World.BOT_DEPLOYMENTS) if replicas_of(d) > 0]
    limit = asyncio.Semaphore(HALT_CONCURRENCY)

    async def one(dep: Body) -> int:
        async with limit:
            try:
                await lower_to(ctx, dep, 0, Outcome())
                return 1
            except ApiError as err:
                log.error(
                    "halt could not lower a bot deployment",
                    extra={"deployment": dep["metadata"]["name"], "error": str(err)},
                )
                return 0

    lowered = sum(await asyncio.gather(*(one(d) for d in running)))
    log.warning("global halt: bot deployments lowered", extra={"lowered": lowered})
    return lowered
