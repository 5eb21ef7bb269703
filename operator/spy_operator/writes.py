"""The operator's writes: server-side apply of children and status patches (bot
scale-downs are in enforce.py). Each skips the write when nothing would change and
remembers the reply in the World, so the next pass compares against it."""

from __future__ import annotations

import logging
from typing import Any

from spy_operator import builders
from spy_operator import constants as c
from spy_operator.context import Context, Outcome
from spy_operator.diffing import is_subset, status_patch
from spy_operator.world import Body

log = logging.getLogger("spy_operator.reconcile")


async def apply_child(ctx: Context, index: str, desired: Body, outcome: Outcome) -> Body:
    """Server-side apply `desired` unless the observed child already matches it."""
    meta = desired["metadata"]
    key = (meta["namespace"], meta["name"])
    digest = builders.desired_hash(desired)
    meta.setdefault("annotations", {})[c.ANNOTATION_DESIRED_HASH] = digest
    observed = ctx.world.get(index, key)
    if observed is not None:
        have = observed.get("metadata", {}).get("annotations", {}).get(c.ANNOTATION_DESIRED_HASH)
        if have == digest and is_subset(desired, observed):
            log.debug("child unchanged", extra={"child": f"{desired['kind']}/{meta['name']}"})
            return observed
    applied = await ctx.kube.apply(desired)
    outcome.writes += 1
    ctx.world.remember(index, key, applied)
    log.info(
        "applied child",
        extra={"child": f"{desired['kind']}/{meta['namespace']}/{meta['name']}"},
    )
    return applied


async def apply_unwatched(ctx: Context, desired: Body, outcome: Outcome) -> None:
    """Server-side apply a child the operator does not watch, unless the same manifest
    was applied less than `ctx.unwatched_reapply_seconds` ago: a pass writes nothing
    when nothing changed, and a child deleted by hand comes back within that time."""
    meta = desired["metadata"]
    key = (desired["kind"], meta["namespace"], meta["name"])
    digest = builders.desired_hash(desired)
    meta.setdefault("annotations", {})[c.ANNOTATION_DESIRED_HASH] = digest
    seen = ctx.unwatched_applied.get(key)
    now = ctx.monotonic()
    if seen is not None and seen[0] == digest and now - seen[1] < ctx.unwatched_reapply_seconds:
        return
    await ctx.kube.apply(desired)
    outcome.writes += 1
    ctx.unwatched_applied[key] = (digest, now)
    log.info("applied child", extra={"child": "/".join(key)})


async def write_status(
    ctx: Context, kind: str, index: str, obj: Body, status: dict[str, Any], outcome: Outcome
) -> None:
    meta = obj["metadata"]
    patch = status_patch(obj.get("status") or {}, status)
    if patch is None:
        return
    updated = await ctx.kube.patch_status(kind, meta["namespace"], meta["name"], patch)
    outcome.writes += 1
    ctx.world.remember(index, (meta["namespace"], meta["name"]), updated)
    log.info(
        "status updated",
        extra={
            "object": f"{kind}/{meta['namespace']}/{meta['name']}",
            "reason": status.get("reason"),
        },
    )
