"""Desired children of each custom resource, as plain manifests. Pure functions.

`build_<child>(view, ...)` takes the CR's typed view (api.py) and the facts the
reconciler gathered and returns the manifest the operator server-side applies. Names
are deterministic; every child has an ownerReference to its CR (so garbage
collection removes it) and the standard labels.

Layout: ``metadata`` (labels, ownerReference, the desired hash) and ``pods`` (the
hardened pod and container shapes) are shared; ``gateway``, ``detector`` and ``bot``
hold one CR kind's children each. Callers (reconcile.py, reconcile_bot.py, enforce.py,
writes.py, bot_access.py, tests) import the names below from ``spy_operator.builders``.
"""

from __future__ import annotations

from spy_operator.builders.bot import bot_deployment_name, build_bot_deployment
from spy_operator.builders.detector import (
    THRESHOLD_PATHS,
    analytics_overrides,
    build_detector_statefulset,
)
from spy_operator.builders.gateway import (
    build_gateway_services,
    build_gateway_statefulset,
    gateway_endpoint,
)
from spy_operator.builders.metadata import (
    Manifest,
    child_metadata,
    desired_hash,
    labels,
    owner_reference,
    selector,
)

__all__ = [
    "THRESHOLD_PATHS",
    "Manifest",
    "analytics_overrides",
    "bot_deployment_name",
    "build_bot_deployment",
    "build_detector_statefulset",
    "build_gateway_services",
    "build_gateway_statefulset",
    "child_metadata",
    "desired_hash",
    "gateway_endpoint",
    "labels",
    "owner_reference",
    "selector",
]
