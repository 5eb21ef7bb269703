"""Pull-secret policy: does each referenced Secret let the node pull the image?

`secret_facts` reduces a Secret to what the policy needs (type, parse result, the
registry hosts in `auths`, key names) so no secret value is ever kept or logged; the
operator's cache stores only these facts. `check_pull_secrets` is pure.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from spy_operator.conditions import Check

DOCKER_CONFIG_JSON = "kubernetes.io/dockerconfigjson"
DOCKER_HUB = "docker.io"
_DOCKER_HUB_ALIASES = {
    "docker.io",
    "index.docker.io",
    "registry-1.docker.io",
    "registry.hub.docker.com",
}


@dataclass(frozen=True)
class SecretFacts:
    """What may be known of a Secret without keeping its contents."""

    type: str
    keys: frozenset[str]
    registries: frozenset[str] | None = None  # for dockerconfigjson that parsed
    parse_error: str | None = None


def normalize_registry(host: str) -> str:
    """'https://myacr.azurecr.io/v2/' -> 'myacr.azurecr.io'; Docker Hub aliases -> docker.io."""
    host = host.strip().lower()
    for prefix in ("https://", "http://"):
        if host.startswith(prefix):
            host = host[len(prefix) :]
    host = host.split("/", 1)[0]
    return DOCKER_HUB if host in _DOCKER_HUB_ALIASES else host


def registry_host(image: str) -> str:
    """Registry host of an image reference, as the container runtime resolves it.

    The first path component is a registry only if it has a '.' or ':' or is
    'localhost'; otherwise the image is on Docker Hub ('nginx', 'library/nginx').
    """
    first, sep, _ = image.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return normalize_registry(first)
    return DOCKER_HUB


def secret_facts(secret: Mapping[str, Any]) -> SecretFacts:
    type_ = str(secret.get("type") or "Opaque")
    data = secret.get("data") or {}
    keys = frozenset(str(k) for k in data)
    if type_ != DOCKER_CONFIG_JSON:
        return SecretFacts(type=type_, keys=keys)
    raw = data.get(".dockerconfigjson")
    if not isinstance(raw, str):
        return SecretFacts(type_, keys, parse_error="has no .dockerconfigjson key")
    try:
        parsed = json.loads(base64.b64decode(raw, validate=True))
    except (binascii.Error, ValueError):
        # ValueError covers JSON and UTF-8 decoding errors; the text is not echoed.
        return SecretFacts(type_, keys, parse_error=".dockerconfigjson is not base64 JSON")
    auths = parsed.get("auths") if isinstance(parsed, dict) else None
    if not isinstance(auths, dict):
        return SecretFacts(type_, keys, parse_error=".dockerconfigjson has no auths object")
    return SecretFacts(type_, keys, registries=frozenset(normalize_registry(h) for h in auths))


def check_pull_secrets(image: str, refs: Sequence[str], facts: Mapping[str, SecretFacts]) -> Check:
    """PullSecretReady: every referenced secret exists, has the type, parses, covers the host."""
    if not refs:
        return Check(True, "NoPullSecrets", "no imagePullSecrets referenced")
    host = registry_host(image)
    for name in refs:
        fact = facts.get(name)
        if fact is None:
            return Check(False, "PullSecretNotFound", f"Secret {name!r} not found")
        if fact.type != DOCKER_CONFIG_JSON:
            return Check(
                False,
                "PullSecretWrongType",
                f"Secret {name!r} has type {fact.type}, want {DOCKER_CONFIG_JSON}",
            )
        if fact.parse_error is not None or fact.registries is None:
            return Check(False, "PullSecretUnparsable", f"Secret {name!r}: {fact.parse_error}")
        if host not in fact.registries:
            return Check(
                False,
                "PullSecretMissingRegistry",
                f"Secret {name!r} has no auths entry for registry {host}",
            )
    return Check(True, "PullSecretsValid", f"{len(refs)} pull secret(s) valid for {host}")


def pull_secret_names(spec: Mapping[str, Any]) -> list[str]:
    refs = spec.get("imagePullSecrets") or []
    return [r["name"] for r in refs if isinstance(r, dict) and isinstance(r.get("name"), str)]
