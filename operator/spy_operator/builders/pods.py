"""The hardened pod and container shapes every workload child shares: non-root,
seccomp RuntimeDefault, no privilege escalation, no capabilities, no API token unless
asked. Pure; used by the gateway, detector and bot builders in this package.
"""

from __future__ import annotations

from typing import Any


def _pod_spec(pull_secrets: tuple[str, ...], **fields: Any) -> dict[str, Any]:
    """No API token unless `fields` says otherwise: only the bot reads the API."""
    pod: dict[str, Any] = {
        "securityContext": _pod_security(),
        "automountServiceAccountToken": False,
    }
    if pull_secrets:
        pod["imagePullSecrets"] = [{"name": name} for name in pull_secrets]
    pod.update(fields)
    return pod


def _pod_security() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": 1000,
        "runAsGroup": 1000,
        "fsGroup": 1000,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _container_security() -> dict[str, Any]:
    return {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


def _container(resources: Any, **fields: Any) -> dict[str, Any]:
    """A container with the hardened security context and the CR's resources, if any."""
    container: dict[str, Any] = {**fields, "securityContext": _container_security()}
    if resources:
        container["resources"] = {k: dict(v) for k, v in resources.items()}
    return container


def _env(pairs: dict[str, str]) -> list[dict[str, Any]]:
    return [{"name": k, "value": v} for k, v in pairs.items()]
