"""The in-memory API server answers as kube-apiserver does, for what the operator uses.

These pin the fake's semantics (each case is kube-apiserver behaviour documented in
the API conventions and the server-side apply docs), so a fast-tier test that passes
does so for the reason it would on a cluster.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from spy_dev.fake_kube import AdmissionRequest, FakeApiServer, FakeKube, GoneError
from spy_operator.kube import ApiError
from virtual_time import virtual_time

NS = "t"
DEP_PATH = f"/apis/apps/v1/namespaces/{NS}/deployments/d"


def deployment(replicas: int = 1, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d", "namespace": NS, "labels": {"app": "d"}},
        "spec": {
            "replicas": replicas,
            "strategy": {"type": "Recreate"},
            "template": {
                "metadata": {"labels": {"app": "d"}},
                "spec": {"containers": [{"name": "main", "image": "img:1"}]},
            },
            **spec,
        },
    }


def managers(obj: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(m["manager"], m["operation"]): m["fieldsV1"] for m in obj["metadata"]["managedFields"]}


def containers(obj: dict[str, Any]) -> list[str]:
    return [c["name"] for c in obj["spec"]["template"]["spec"]["containers"]]


def test_create_sets_identity_and_a_noop_apply_keeps_the_resource_version() -> None:
    api = FakeApiServer()
    first = api.apply(deployment(), manager="op")
    assert first["metadata"]["uid"] and first["metadata"]["generation"] == 1
    events = len(api.events)
    again = api.apply(deployment(), manager="op")
    assert again["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    assert len(api.events) == events, "a write that changes nothing emits no watch event"


def test_generation_moves_with_the_spec_only() -> None:
    api = FakeApiServer()
    api.apply(deployment(), manager="op")
    labelled = api.patch("Deployment", NS, "d", {"metadata": {"labels": {"x": "y"}}})
    assert labelled["metadata"]["generation"] == 1
    status = api.patch("Deployment", NS, "d", {"status": {"foo": 1}}, subresource="status")
    assert status["metadata"]["generation"] == 1
    scaled = api.patch("Deployment", NS, "d", {"spec": {"replicas": 3}})
    assert scaled["metadata"]["generation"] == 2


def test_status_and_spec_are_written_only_through_their_own_endpoints() -> None:
    api = FakeApiServer()
    api.rollouts = False
    api.apply(deployment(), manager="op")
    main = api.patch("Deployment", NS, "d", {"status": {"replicas": 9}})
    assert "status" not in main, "the main resource ignores status"
    sub = api.patch(
        "Deployment",
        NS,
        "d",
        {"spec": {"replicas": 9}, "status": {"replicas": 2}},
        subresource="status",
    )
    assert sub["spec"]["replicas"] == 1 and sub["status"] == {"replicas": 2}


def test_apply_conflicts_without_force_and_takes_the_field_over_with_it() -> None:
    api = FakeApiServer()
    api.apply(deployment(), manager="op")
    api.patch("Deployment", NS, "d", {"spec": {"replicas": 5}}, manager="kubectl-scale")
    with pytest.raises(ApiError) as conflict:
        api.apply(deployment(), manager="op", force=False)
    assert conflict.value.status == 409 and "kubectl-scale" in str(conflict.value)
    forced = api.apply(deployment(), manager="op", force=True)
    assert forced["spec"]["replicas"] == 1
    assert "f:replicas" in managers(forced)[("op", "Apply")]["f:spec"]
    assert "f:spec" not in managers(forced).get(("kubectl-scale", "Update"), {})


def test_fields_of_other_managers_survive_an_apply_and_lists_merge_by_key() -> None:
    api = FakeApiServer()
    api.apply(deployment(), manager="op")
    sidecar = {"spec": {"template": {"spec": {"containers": [{"name": "side", "image": "x"}]}}}}
    api.apply(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "d", "namespace": NS},
            **sidecar,
        },
        manager="mallory",
    )
    after = api.apply(deployment(), manager="op")
    assert containers(after) == ["main", "side"]
    owned = managers(after)[("mallory", "Apply")]
    assert 'k:{"name":"side"}' in owned["f:spec"]["f:template"]["f:spec"]["f:containers"]


def test_a_field_the_applier_stops_sending_is_removed_unless_someone_else_owns_it() -> None:
    api = FakeApiServer()
    api.apply(deployment(minReadySeconds=5, paused=False), manager="op")
    api.patch("Deployment", NS, "d", {"spec": {"paused": True}}, manager="human")
    after = api.apply(deployment(), manager="op")
    assert "minReadySeconds" not in after["spec"]
    assert after["spec"]["paused"] is True


def test_put_with_a_stale_resource_version_and_a_second_create_are_409() -> None:
    api = FakeApiServer()
    lease = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "l", "namespace": NS},
        "spec": {"holderIdentity": "a"},
    }
    path = f"/apis/coordination.k8s.io/v1/namespaces/{NS}/leases"

    async def run() -> None:
        kube = FakeKube(api)
        created = await kube.create(path, lease, "leases")
        with pytest.raises(ApiError) as exists:
            await kube.create(path, lease, "leases")
        assert exists.value.status == 409
        await kube.replace(f"{path}/l", created, "leases")
        updated = {**created, "spec": {"holderIdentity": "b"}}
        await kube.replace(f"{path}/l", updated, "leases")
        with pytest.raises(ApiError) as stale:
            await kube.replace(f"{path}/l", {**created, "spec": {"holderIdentity": "c"}}, "leases")
        assert stale.value.status == 409
        assert await kube.get(f"{path}/missing") is None

    asyncio.run(run())


def test_the_scale_subresource_changes_replicas_only_and_admission_sees_it() -> None:
    api = FakeApiServer()
    api.apply(deployment(), manager="op")
    seen: list[tuple[str, str]] = []

    def observe(req: AdmissionRequest) -> str | None:
        seen.append((req.plural, req.subresource))
        return None

    api.admission.append(observe)

    async def run() -> None:
        kube = FakeKube(api)
        scale = await kube.get(DEP_PATH + "/scale")
        assert scale is not None and scale["kind"] == "Scale" and scale["spec"]["replicas"] == 1
        await kube.merge_patch("apps/v1", "Deployment", NS, "d/scale", {"spec": {"replicas": 0}})

    asyncio.run(run())
    assert (api.get("Deployment", NS, "d") or {})["spec"]["replicas"] == 0
    assert ("deployments", "scale") in seen


def test_an_admission_refusal_is_403_and_changes_nothing() -> None:
    api = FakeApiServer()
    api.apply(deployment(), manager="op")
    api.admission.append(lambda req: "denied" if req.plural == "deployments" else None)
    with pytest.raises(ApiError) as refused:
        api.patch("Deployment", NS, "d", {"spec": {"replicas": 3}})
    assert refused.value.status == 403
    assert (api.get("Deployment", NS, "d") or {})["spec"]["replicas"] == 1


def test_recreate_with_a_rolling_update_block_is_422() -> None:
    api = FakeApiServer()
    api.apply(deployment(), manager="op")
    api.patch("Deployment", NS, "d", {"spec": {"strategy": {"type": "RollingUpdate"}}})
    with pytest.raises(ApiError) as invalid:
        api.apply(deployment(), manager="op")
    assert invalid.value.status == 422 and "rollingUpdate" in str(invalid.value)


def test_delete_waits_for_finalizers_and_collects_or_orphans_dependents() -> None:
    api = FakeApiServer()
    owner = api.apply(
        {
            "apiVersion": "spyoptions.io/v1alpha1",
            "kind": "TradingBot",
            "metadata": {"name": "o", "namespace": NS},
            "spec": {},
        }
    )
    ref = {
        "apiVersion": "spyoptions.io/v1alpha1",
        "kind": "TradingBot",
        "name": "o",
        "uid": owner["metadata"]["uid"],
        "controller": True,
    }
    child = deployment()
    child["metadata"]["ownerReferences"] = [ref]
    api.apply(child, manager="op")
    api.delete("TradingBot", NS, "o", orphan=True)
    assert (api.get("Deployment", NS, "d") or {})["metadata"]["ownerReferences"] == []
    owner = api.apply(
        {
            "apiVersion": "spyoptions.io/v1alpha1",
            "kind": "TradingBot",
            "metadata": {"name": "o", "namespace": NS, "finalizers": ["x/y"]},
            "spec": {},
        }
    )
    child["metadata"]["ownerReferences"] = [{**ref, "uid": owner["metadata"]["uid"]}]
    api.apply(child, manager="op")
    api.delete("TradingBot", NS, "o")
    assert (api.get("TradingBot", NS, "o") or {})["metadata"]["deletionTimestamp"]
    api.patch("TradingBot", NS, "o", {"metadata": {"finalizers": None}})
    api.delete("TradingBot", NS, "o")
    assert api.get("TradingBot", NS, "o") is None
    assert api.get("Deployment", NS, "d") is None, "the garbage collector removes dependents"


def test_a_statefulset_on_delete_keeps_running_its_old_revision() -> None:
    api = FakeApiServer()
    sts = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "s", "namespace": NS},
        "spec": {
            "replicas": 1,
            "template": {"spec": {"containers": [{"name": "c", "image": "a"}]}},
        },
    }
    first = api.apply(sts, manager="op")
    assert first["status"]["currentRevision"] == first["status"]["updateRevision"]
    api.patch("StatefulSet", NS, "s", {"spec": {"updateStrategy": {"type": "OnDelete"}}})
    sts["spec"]["template"]["spec"]["containers"][0]["image"] = "b"
    after = api.apply(sts, manager="op")["status"]
    assert after["currentRevision"] != after["updateRevision"]
    assert after["updatedReplicas"] == 0 and after["readyReplicas"] == 1


def test_watch_events_are_ordered_and_a_compacted_history_is_gone() -> None:
    api = FakeApiServer()
    api.apply(deployment(), manager="op")
    api.patch("Deployment", NS, "d", {"spec": {"replicas": 2}})
    rvs = [e.resource_version for e in api.events_since(0)]
    assert rvs == sorted(rvs) and len(set(rvs)) == len(rvs)
    mark = api.resource_version
    api.compact()
    api.patch("Deployment", NS, "d", {"spec": {"replicas": 3}})
    assert [e.type for e in api.events_since(api.resource_version - 1)] == ["MODIFIED"]
    with pytest.raises(GoneError):
        api.events_since(mark - 1)


@virtual_time
async def test_faults_match_verb_path_user_and_count_and_can_hang() -> None:
    api = FakeApiServer(clock=asyncio.get_running_loop().time)
    api.apply(deployment(), manager="op")
    a, b = FakeKube(api, user="a"), FakeKube(api, user="b")
    api.fail("GET", DEP_PATH, 503, times=2, user="a")
    for _ in range(2):
        with pytest.raises(ApiError):
            await a.get(DEP_PATH)
    assert await a.get(DEP_PATH) is not None
    gate = asyncio.Event()
    api.fail("GET", "*/deployments/*", 200, hang=gate, user="b", text="{}")
    waiting = asyncio.create_task(b.get(DEP_PATH))
    await asyncio.sleep(30)
    assert not waiting.done()
    gate.set()
    assert await waiting == {}
