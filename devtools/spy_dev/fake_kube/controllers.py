"""What runs beside the fake API server's store: defaulting and validation of
Deployments/StatefulSets, a tiny controller-manager (Deployment rollouts, StatefulSet
pods), and the scale subresource's view. Called by store.py after each write.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import TYPE_CHECKING

from .objects import KINDS, Body, ObjKey, RefusedError, Request, clone

if TYPE_CHECKING:
    from .store import ObjectStore


def default(plural: str, obj: Body) -> None:
    if plural != "deployments":
        return
    spec = obj.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    strategy = spec.setdefault("strategy", {"type": "RollingUpdate"})
    if strategy.get("type", "RollingUpdate") == "RollingUpdate":
        strategy.setdefault("type", "RollingUpdate")
        strategy.setdefault("rollingUpdate", {"maxUnavailable": "25%", "maxSurge": "25%"})


def validate(plural: str, name: str, obj: Body) -> None:
    spec = obj.get("spec") or {}
    errors = []
    if plural in ("deployments", "statefulsets") and int(spec.get("replicas") or 0) < 0:
        errors.append("spec.replicas: Invalid value: must be greater than or equal to 0")
    strategy = spec.get("strategy") or {}
    if (
        plural == "deployments"
        and strategy.get("type") == "Recreate"
        and ("rollingUpdate" in strategy)
    ):
        errors.append(
            "spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy "
            "`type` is 'Recreate'"
        )
    if errors:
        kind = KINDS[plural][1]
        raise RefusedError(422, f'{kind}.apps "{name}" is invalid: {"; ".join(errors)}')


def controller_manager(store: ObjectStore, key: ObjKey) -> None:
    """Report a Deployment's rollout at once (no pods); run a StatefulSet's pods, which
    are ready at once, replaced on a template change unless updateStrategy is OnDelete
    (then only a deleted pod comes back at the new revision)."""
    plural = key[1]
    if not store.rollouts or plural not in ("deployments", "statefulsets"):
        return
    obj = clone(store.objects[key])
    spec, status = obj.get("spec") or {}, dict(obj.get("status") or {})
    want = int(spec.get("replicas", 1))
    status.update(observedGeneration=obj["metadata"]["generation"], replicas=want)
    if plural == "statefulsets":
        template = json.dumps(spec.get("template"), sort_keys=True)
        revision = f"{key[3]}-{hashlib.sha256(template.encode()).hexdigest()[:10]}"
        on_delete = (spec.get("updateStrategy") or {}).get("type") == "OnDelete"
        revisions = run_pods(store, key, obj, revision, want, on_delete)
        updated = revisions.count(revision)
        status.update(updateRevision=revision, updatedReplicas=updated)
        if updated == want or not status.get("currentRevision"):
            status["currentRevision"] = revision
        status["readyReplicas"] = len(revisions)
    else:
        status.update(updatedReplicas=want, availableReplicas=want, readyReplicas=want)
    if status != obj.get("status"):
        obj["status"] = status
        store.commit(key, obj, store.owners.get(key, {}), "MODIFIED")


def run_pods(
    store: ObjectStore, key: ObjKey, sts: Body, revision: str, want: int, on_delete: bool
) -> list[str]:
    """Pods `<name>-<i>` of a StatefulSet; returns the revision each one runs."""
    revisions = []
    template = (sts.get("spec") or {}).get("template") or {}
    for i in range(max(want, 0)):
        pod_key = ("/api/v1", "pods", key[2], f"{key[3]}-{i}")
        pod = store.objects.get(pod_key)
        if pod is not None and (on_delete or pod["metadata"]["labels"].get(
            "controller-revision-hash") == revision):  # fmt: skip
            revisions.append(pod["metadata"]["labels"]["controller-revision-hash"])
            continue
        meta = {
            "name": pod_key[3],
            "namespace": key[2],
            "uid": str(uuid.uuid4()),
            "generation": 1,
            "labels": {
                **((template.get("metadata") or {}).get("labels") or {}),
                "controller-revision-hash": revision,
                "apps.kubernetes.io/pod-index": str(i),
            },
            "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": key[3],
                 "uid": sts["metadata"]["uid"], "controller": True}
            ],
        }  # fmt: skip
        new_pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": meta,
            "spec": clone(template.get("spec") or {}),
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
        }
        store.commit(pod_key, new_pod, {}, "ADDED" if pod is None else "MODIFIED")
        revisions.append(revision)
    for other in [k for k in store.objects if k[1] == "pods" and k[2] == key[2]]:
        owner = store.objects[other]["metadata"]["name"].rsplit("-", 1)
        if owner[0] == key[3] and owner[1].isdigit() and int(owner[1]) >= want:
            store.remove(other, Request("DELETE", "", {}, "", None, "sts", store.clock()))
    return revisions


def scale_of(obj: Body) -> Body:
    meta = obj["metadata"]
    return {
        "apiVersion": "autoscaling/v1",
        "kind": "Scale",
        "metadata": {k: meta[k] for k in ("name", "namespace", "resourceVersion", "uid")},
        "spec": {"replicas": int((obj.get("spec") or {}).get("replicas", 0))},
        "status": {"replicas": int((obj.get("status") or {}).get("replicas", 0))},
    }


def from_scale(live: Body, scale: Body) -> Body:
    new = clone(live)
    new.setdefault("spec", {})["replicas"] = int((scale.get("spec") or {}).get("replicas", 0))
    return new
