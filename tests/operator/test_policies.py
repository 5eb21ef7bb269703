"""Pure policies and helpers: pull secrets, VPN, client ids, drift detection, conditions."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from spy_operator.clientids import BLOCK, Consumer, allocate
from spy_operator.conditions import set_condition
from spy_operator.diffing import is_subset, quantity, status_patch
from spy_operator.pullsecrets import check_pull_secrets, registry_host, secret_facts
from spy_operator.vpn import ProbeResult, VpnTarget, check_vpn, gate_view, probe, rtt_changed


@pytest.mark.parametrize(
    ("image", "host"),
    [
        ("nginx", "docker.io"),
        ("library/nginx:1.27", "docker.io"),
        ("myacr.azurecr.io/spy/bot:1.0", "myacr.azurecr.io"),
        ("MyAcr.AzureCR.io/bot@sha256:abc", "myacr.azurecr.io"),
        ("localhost:5000/bot", "localhost:5000"),
        ("localhost/bot", "localhost"),
        ("ghcr.io/gnzsnz/ib-gateway:stable", "ghcr.io"),
        ("index.docker.io/library/nginx", "docker.io"),
    ],
)
def test_registry_host(image: str, host: str) -> None:
    assert registry_host(image) == host


def docker_secret(auths: object) -> dict[str, object]:
    raw = base64.b64encode(json.dumps(auths).encode()).decode()
    return {"type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": raw}}


IMAGE = "myacr.azurecr.io/bot:1"


@pytest.mark.parametrize(
    ("secret", "reason"),
    [
        (None, "PullSecretNotFound"),
        ({"type": "Opaque", "data": {"a": "eA=="}}, "PullSecretWrongType"),
        ({"type": "kubernetes.io/dockerconfigjson", "data": {}}, "PullSecretUnparsable"),
        (
            {"type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": "!!!"}},
            "PullSecretUnparsable",
        ),
        (docker_secret(["not", "an", "object"]), "PullSecretUnparsable"),
        (docker_secret({"credsStore": "desktop"}), "PullSecretUnparsable"),
        (docker_secret({"auths": {"other.azurecr.io": {}}}), "PullSecretMissingRegistry"),
        (docker_secret({"auths": {"https://myacr.azurecr.io/v2/": {}}}), "PullSecretsValid"),
        (docker_secret({"auths": {"myacr.azurecr.io": {"auth": "x"}}}), "PullSecretsValid"),
    ],
)
def test_pull_secret_policy(secret: dict[str, object] | None, reason: str) -> None:
    facts = {} if secret is None else {"s": secret_facts(secret)}
    assert check_pull_secrets(IMAGE, ["s"], facts).reason == reason


def test_every_referenced_secret_must_be_valid() -> None:
    good = secret_facts(docker_secret({"auths": {"myacr.azurecr.io": {}}}))
    assert check_pull_secrets(IMAGE, ["a", "b"], {"a": good}).reason == "PullSecretNotFound"
    assert check_pull_secrets(IMAGE, [], {}).ok


def test_secret_facts_keep_no_values() -> None:
    facts = secret_facts(
        {"type": "Opaque", "data": {"password": base64.b64encode(b"hunter2").decode()}}
    )
    assert "hunter2" not in repr(facts) and "aHVudGVyMg" not in repr(facts)
    assert facts.keys == frozenset({"password"})


def test_vpn_policy() -> None:
    target = VpnTarget("10.0.0.4", 443, 1.0, required=True)
    assert check_vpn(None, None).reason == "VPNNotConfigured"
    assert check_vpn(target, None).reason == "VPNProbePending"
    assert check_vpn(target, ProbeResult(False, None, "refused")).reason == "VPNUnreachable"
    slow = check_vpn(target, ProbeResult(True, 45.0))
    fast = check_vpn(target, ProbeResult(True, 0.3))
    assert slow.ok and slow == fast  # RTT lives in status.vpnRttMs, not in the message
    down = check_vpn(target, ProbeResult(False, None, "refused"))
    assert not gate_view(target, down).ok
    assert gate_view(VpnTarget("h", 1, 1.0, required=False), down).ok


@pytest.mark.parametrize(
    ("old", "new", "changed"),
    [(None, 1.0, True), (1.0, 1.2, False), (10.0, 30.0, True), (None, None, False)],
)
def test_rtt_hysteresis(old: float | None, new: float | None, changed: bool) -> None:
    assert rtt_changed(old, new) is changed


async def test_probe_against_a_real_listener() -> None:
    import asyncio

    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        up = await probe("127.0.0.1", port, 1.0)
    assert up.ok and up.rtt_ms is not None and up.rtt_ms < 1000
    down = await probe("127.0.0.1", port, 0.5)  # server closed
    assert not down.ok and down.error


async def test_probe_of_an_invalid_host_fails_instead_of_raising() -> None:
    result = await probe("vpn..corp", 443, 0.5)
    assert not result.ok and "invalid host" in (result.error or "")


def test_client_ids_are_distinct_per_gateway_and_stable() -> None:
    consumers = [
        Consumer("OptionsDetector", "ns", "det", "gw", "2026-01-01T00:00:00Z", 4),
        Consumer("TradingBot", "ns", "bot", "gw", "2026-01-02T00:00:00Z", 1),
        Consumer("TradingBot", "ns", "other-gw-bot", "gw2", "2026-01-01T00:00:00Z", 1),
    ]
    ids = allocate(consumers)
    assert ids[("OptionsDetector", "ns", "det")] == [1, 2, 3, 4]
    assert ids[("TradingBot", "ns", "bot")] == [1 + BLOCK]
    assert ids[("TradingBot", "ns", "other-gw-bot")] == [1]
    # A newer consumer never moves an older one.
    more = allocate(
        [*consumers, Consumer("TradingBot", "ns", "new", "gw", "2026-02-01T00:00:00Z", 1)]
    )
    assert more[("TradingBot", "ns", "bot")] == ids[("TradingBot", "ns", "bot")]


@given(
    st.lists(
        st.tuples(st.sampled_from(["g1", "g2"]), st.integers(1, 32), st.integers(0, 10**6)),
        max_size=40,
    )
)
def test_client_ids_never_collide_on_a_gateway(specs: list[tuple[str, int, int]]) -> None:
    consumers = [
        Consumer("OptionsDetector", "ns", f"c{i}", gw, f"{ts:08d}", n)
        for i, (gw, n, ts) in enumerate(specs)
    ]
    ids = allocate(consumers)
    for gw in ("g1", "g2"):
        used = [i for c in consumers if c.gateway == gw for i in ids[c.key]]
        assert len(used) == len(set(used))
        assert all(i >= 1 for i in used)


@pytest.mark.parametrize(
    ("want", "have", "ok"),
    [
        ({"a": 1}, {"a": 1, "b": 2}, True),
        ({"a": 1}, {"a": 2}, False),
        ({"a": []}, {}, True),  # the API server drops empty lists
        ({"a": [1]}, {}, False),
        ({"env": [{"name": "TZ", "value": ""}]}, {"env": [{"name": "TZ"}]}, True),  # omitempty
        ({"l": [{"x": 1}]}, {"l": [{"x": 1, "y": 2}]}, True),
        ({"l": [1, 2]}, {"l": [1]}, False),
        ({"cpu": "1000m"}, {"cpu": "1"}, True),
        ({"mem": "1Gi"}, {"mem": "1073741824"}, True),
        ({"mem": "1Gi"}, {"mem": "1G"}, False),
        ({"b": True}, {"b": 1}, False),
        ({"replicas": 0}, {"replicas": 3}, False),
    ],
)
def test_is_subset(want: object, have: object, ok: bool) -> None:
    assert is_subset(want, have) is ok


def test_quantity() -> None:
    assert quantity("500m") == quantity("0.5")
    assert quantity("nonsense") is None


def test_status_patch_removes_stale_keys_and_skips_equal() -> None:
    assert status_patch({"a": 1}, {"a": 1}) is None
    assert status_patch({"a": 1, "b": 2}, {"a": 1}) == {"a": 1, "b": None}


def test_set_condition_moves_transition_time_only_on_flip() -> None:
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    t1 = t0 + dt.timedelta(minutes=5)
    conds = set_condition([], "Ready", False, "Starting", "m", 1, t0)
    same = set_condition(conds, "Ready", False, "StillStarting", "m2", 2, t1)
    assert same[0]["lastTransitionTime"] == "2026-01-01T00:00:00Z"
    assert same[0]["observedGeneration"] == 2 and same[0]["reason"] == "StillStarting"
    flipped = set_condition(same, "Ready", True, "Running", "m", 2, t1)
    assert flipped[0]["lastTransitionTime"] == "2026-01-01T00:05:00Z"
    other = set_condition(flipped, "Armed", None, "Unknown", "m", 2, t1)
    assert [c["type"] for c in other] == ["Armed", "Ready"]
    assert other[0]["status"] == "Unknown"


def test_operator_namespace_is_always_watched() -> None:
    from spy_operator.__main__ import watched_namespaces

    assert watched_namespaces([], "spy-system") == []  # cluster-wide
    assert watched_namespaces(["desk"], "spy-system") == ["desk", "spy-system"]
    assert watched_namespaces(["spy-system"], "spy-system") == ["spy-system"]


class FakeIndex(dict):  # type: ignore[type-arg]
    """kopf.Index's read side: key -> store (an iterable of values)."""


def test_world_overlay_prefers_newer_writes_and_forgets_ghosts() -> None:
    from spy_operator.world import World

    now = [100.0]
    world = World(clock=lambda: now[0])
    deps: FakeIndex = FakeIndex()
    bots: FakeIndex = FakeIndex()
    world.attach({World.DEPLOYMENTS: deps, World.BOTS: bots})
    key = ("ns", "b-bot")

    def body(rv: int) -> dict[str, object]:
        return {"metadata": {"resourceVersion": str(rv)}}

    deps[key] = [body(5)]
    world.remember(World.DEPLOYMENTS, key, body(7))
    assert world.get(World.DEPLOYMENTS, key) == body(7)  # our write is newer
    deps[key] = [body(7)]
    assert world.get(World.DEPLOYMENTS, key) == body(7)  # the watch caught up
    # A write whose object the watch no longer shows: kept briefly, then a ghost.
    del deps[key]
    world.remember(World.DEPLOYMENTS, key, body(9))
    assert world.get(World.DEPLOYMENTS, key) == body(9)
    now[0] += World.GHOST_SECONDS + 1
    assert world.get(World.DEPLOYMENTS, key) is None
    # A custom resource gone from the watch is gone, whatever status was written.
    world.remember(World.BOTS, ("ns", "b"), body(3))
    assert world.get(World.BOTS, ("ns", "b")) is None
