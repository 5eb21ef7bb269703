"""Bad objects on the real control plane: dangling references and incomplete Secrets
give conditions, never a crash, and Secret values never reach the operator's log.
"""

from __future__ import annotations

from typing import Any

import pytest
from k8s_support import Kubectl, wait_for
from operator_support import (
    bot,
    condition,
    credentials,
    gateway,
    pull_secret,
    ready,
)
from spy_dev.devcluster import REPO_ROOT
from spy_operator import constants as c

pytestmark = pytest.mark.usefixtures("operator")


EXAMPLES = REPO_ROOT / "examples"


BAD_OBJECTS: list[tuple[str, dict[str, Any]]] = [
    ("bot-missing-gateway", bot("orphan", gw="does-not-exist")),
    (
        "gateway-missing-credentials",
        {
            "apiVersion": c.API_VERSION,
            "kind": "IBGateway",
            "metadata": {"name": "nocreds"},
            "spec": {"credentialsSecretRef": {"name": "missing"}},
        },
    ),
    (
        "detector-missing-gateway",
        {
            "apiVersion": c.API_VERSION,
            "kind": "OptionsDetector",
            "metadata": {"name": "lost"},
            "spec": {
                "image": "x",
                "gatewayRef": {"name": "missing"},
                "imagePullSecrets": [{"name": "missing"}],
                "backend": {"url": "http://b", "tokenSecretRef": {"name": "missing"}},
            },
        },
    ),
]


@pytest.mark.parametrize("obj", [b[1] for b in BAD_OBJECTS], ids=[b[0] for b in BAD_OBJECTS])
def test_dangling_objects_get_conditions_not_crashes(
    kubectl: Kubectl, namespace: str, operator: Any, obj: dict[str, Any]
) -> None:
    kubectl.apply(obj, namespace)
    kind, name = obj["kind"].lower(), obj["metadata"]["name"]

    def reported() -> dict[str, Any] | None:
        got = kubectl.get(kind, name, namespace)
        cond = condition(got, "Ready") if kind != "tradingbot" else condition(got, "Armed")
        return cond if cond.get("status") == "False" else None

    cond = wait_for(f"{kind} {name} reports the problem", reported, 30)
    assert cond["reason"] in {"GatewayNotFound", "CredentialsSecretNotFound"}
    assert operator.alive()
    assert "reconcile crashed" not in operator.log_text()


def test_credentials_secret_with_a_missing_key(kubectl: Kubectl, namespace: str) -> None:
    kubectl.apply(pull_secret(), namespace)
    kubectl.apply(credentials(keys=("username",)), namespace)
    kubectl.apply(gateway("gw"), namespace)
    cond = wait_for(
        "credentials reported",
        lambda: (
            condition(kubectl.get("ibgateway", "gw", namespace), "Ready").get("reason")
            == "CredentialsKeyMissing"
            and condition(kubectl.get("ibgateway", "gw", namespace), "Ready")
        ),
        30,
    )
    assert "password" in cond["message"]


def test_secret_values_never_reach_the_logs(
    operator: Any, kubectl: Kubectl, namespace: str
) -> None:
    marker = "s3cr3t-value-that-must-not-leak"
    kubectl.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "ib-creds"},
            "type": "Opaque",
            "stringData": {"username": marker, "password": marker},
        },
        namespace,
    )
    kubectl.apply(pull_secret(), namespace)
    kubectl.apply(gateway("gw"), namespace)
    wait_for("gateway Ready", lambda: ready(kubectl, "ibgateway", "gw", namespace), 30)
    import base64

    encoded = base64.b64encode(marker.encode()).decode()
    text = operator.log_text()
    assert marker not in text and encoded not in text
