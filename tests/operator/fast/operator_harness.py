"""The operator wired as handlers.startup wires it, on the in-memory API server.

`Harness` builds the real Context, World, Controller (and LeaderElector) around a
`FakeKube`, and plays kopf's part: it lists every watched kind, fills the indices with
the operator's own index functions (handlers.idx_*), then feeds watch events to the
operator's own event handlers (handlers.on_*), honouring their `when=` filters. The
watch can be paused (a stale cache), lagged, or expired (410 Gone -> re-list, which
reports nothing about objects deleted in the gap). Time is the virtual loop's.

Manifest factories reuse tests/operator_support.py, with approvals timed on the
harness's clock. Playing kopf's part (the registrations, lists and watch events) is
kopf_playback.py, a mixin of `Harness`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from typing import Any

import operator_support as support
from kopf_playback import KopfPlayback
from spy_dev.fake_kube import FakeApiServer, FakeKube
from spy_operator import constants as c
from spy_operator.context import Context
from spy_operator.controller import Controller
from spy_operator.leader import LeaderElector
from spy_operator.world import World

Body = dict[str, Any]
NS = "trading"
# Wall-clock time at virtual time 0 (ctx.clock and approvals use it).
EPOCH = dt.datetime(2026, 12, 1, 14, 30, tzinfo=dt.UTC)


APPROVAL_KEY = b"fast-tier-approval-key-0123456789abcdef"


def _approval_webhook(clock: Callable[[], dt.datetime]) -> Callable[[Any], Any]:
    import base64
    import json

    from spy_operator import webhook  # main since 5204e17
    from spy_operator.admission import Policy

    policy = Policy(gitops_identities=frozenset({"admin"}))

    def mutate(req: Any) -> Any:
        if req.plural != "tradingbots" or req.subresource:
            return None
        review = {
            "request": {
                "uid": "fake",
                "operation": "CREATE" if req.old is None else "UPDATE",
                "userInfo": {"username": req.user},
                "object": req.new,
                "oldObject": req.old,
            }
        }
        answer = webhook.respond(review, policy, APPROVAL_KEY, clock())["response"]
        if not answer["allowed"]:
            return str(answer["status"]["message"])
        if "patch" in answer:
            return json.loads(base64.b64decode(answer["patch"]))
        return None

    return mutate


class NoProber:
    """No VPN is configured in these tests; a probe must never be asked for."""

    def result(self, target: Any) -> None:
        raise AssertionError(f"unexpected VPN probe of {target}")


class Harness(KopfPlayback):
    def __init__(
        self,
        api: FakeApiServer | None = None,
        *,
        leader: bool = False,
        workers: int = 4,
        resync_seconds: float = 30.0,
        user: str = "spy-operator",
        lease_seconds: float = 15.0,
        renew_seconds: float = 2.0,
    ) -> None:
        loop = asyncio.get_running_loop()
        self.api = api or FakeApiServer(clock=loop.time)
        self.kube = FakeKube(self.api, user=user)
        self.world = World(clock=loop.time)
        self.ctx = self._context(loop, approval_webhook=api is None)
        self.leader: LeaderElector | None = None
        if leader:
            self.leader = LeaderElector(
                self.kube,
                c.DEFAULT_OPERATOR_NAMESPACE,
                c.LEASE_NAME,
                lease_seconds=lease_seconds,
                renew_seconds=renew_seconds,
                clock=self.ctx.clock,
                host=user,  # each replica its own pod
            )
        self.controller = Controller(
            self.ctx, self.leader, workers=workers, resync_seconds=resync_seconds
        )
        if self.leader is not None:  # as handlers.startup wires them
            self.leader.on_elected = self.controller.enqueue_all
            leader_ = self.leader
            self.kube.may_write = lambda: leader_.is_leader
        self._init_playback(self.controller)

    def _context(self, loop: asyncio.AbstractEventLoop, *, approval_webhook: bool) -> Context:
        """The operator's Context on the harness's clocks, with the approval key."""
        ctx = Context(
            kube=self.kube,
            world=self.world,
            prober=NoProber(),  # type: ignore[arg-type]
            clock=lambda: EPOCH + dt.timedelta(seconds=loop.time()),
        )
        if hasattr(ctx, "monotonic"):  # the RTT pacing clock (main since 3065eb8)
            ctx.monotonic = loop.time
        if hasattr(ctx, "approval_key"):
            ctx.approval_key = APPROVAL_KEY
            if approval_webhook:
                # The approval webhook (main since 5204e17) as kube-apiserver would call
                # it: the operator's own respond(), with `admin` as the GitOps identity,
                # so one write may carry an approval and arm (as the cluster tests do).
                self.api.mutating.append(_approval_webhook(ctx.clock))
        return ctx

    # ------------------------------------------------------------------ running
    async def start(self) -> Harness:
        self.controller.start()
        self.api.listeners.append(self._changed.set)
        await self.relist()
        self._tasks.append(asyncio.create_task(self._watch(), name="fake-watch"))
        return self

    async def stop(self) -> None:
        if self._changed.set in self.api.listeners:
            self.api.listeners.remove(self._changed.set)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.controller.stop()

    # ------------------------------------------------------------------ waiting
    async def wait_until(
        self, what: str, probe: Callable[[], Any], within: float = 60.0, step: float = 0.01
    ) -> float:
        """Virtual seconds until `probe()` is truthy; fails after `within` of them."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        while not probe():
            self.check_watch()
            if loop.time() - started > within:
                raise AssertionError(f"not within {within} s (virtual): {what}")
            await asyncio.sleep(step)
        return loop.time() - started

    async def idle(self, seconds: float = 1.0) -> None:
        """Let `seconds` of virtual time pass."""
        await asyncio.sleep(seconds)
        self.check_watch()

    # ------------------------------------------------------------------ the world
    def create(self, obj: Body, namespace: str = NS, manager: str = "kubectl") -> Body:
        obj = dict(obj, metadata={**obj["metadata"], "namespace": namespace})
        return self.api.apply(obj, manager=manager)

    def get(self, kind: str, name: str, namespace: str = NS) -> Body | None:
        return self.api.get(kind, namespace, name)

    def replicas(self, bot: str, namespace: str = NS) -> int | None:
        dep = self.api.peek("Deployment", namespace, f"{bot}-bot")
        return None if dep is None else int(dep["spec"].get("replicas", 0))

    def status(self, bot: str, namespace: str = NS) -> Body:
        """The bot's status as stored (read-only: probes poll it every 10 ms)."""
        obj = self.api.peek("TradingBot", namespace, bot) or {}
        return obj.get("status") or {}

    def paper_world(self, namespace: str = NS, **gw_spec: Any) -> None:
        self.create(support.pull_secret(), namespace)
        self.create(support.credentials(), namespace)
        self.create(support.gateway(**gw_spec), namespace)

    def halt(self, reason: str = "drill") -> None:
        self.api.apply(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": c.HALT_CONFIGMAP, "namespace": c.DEFAULT_OPERATOR_NAMESPACE},
                "data": {"reason": reason},
            }
        )


def bot(name: str = "bot", expires_in: float | None = 3600, **kwargs: Any) -> Body:
    """operator_support.bot with the approval's expiry on the harness's clock."""
    body = support.bot(name, expires_in=expires_in, **kwargs)
    if "approval" in body["spec"] and expires_in is not None:
        loop_now = asyncio.get_running_loop().time()
        expires = EPOCH + dt.timedelta(seconds=loop_now + expires_in)
        body["spec"]["approval"]["expiresAt"] = support.rfc3339(expires)
    return body


def armed_at(h: Harness, name: str) -> Callable[[], bool]:
    """Probe: the bot's status says Armed and its Deployment runs 1 replica."""
    return lambda: h.status(name).get("reason") == "Armed" and h.replicas(name) == 1


DEPLOYMENT_APPLY = f"/apis/apps/v1/namespaces/{NS}/deployments/*"


async def armed(h: Harness, *names: str) -> None:
    """Create the bots and wait until each is armed (status and 1 replica)."""
    for name in names:
        h.create(bot(name))
    for name in names:
        await h.wait_until(f"{name} armed", armed_at(h, name), within=5)


async def running_bot(name: str = "b", **harness: object) -> Harness:
    """A started harness with the paper world and one armed bot `name`."""
    h = await Harness(**harness).start()  # type: ignore[arg-type]
    h.paper_world()
    h.create(bot(name))
    await h.wait_until("armed", armed_at(h, name), within=5)
    return h
