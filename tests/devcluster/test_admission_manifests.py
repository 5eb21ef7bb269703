"""deploy/admission/ as spy_dev.admission reads it: one source for dev and Helm (no cluster)."""

from __future__ import annotations

import re

import pytest
from spy_dev import admission
from spy_dev.devcluster import ADMISSION_DIR, OPERATOR_USERS
from spy_operator import constants as c


def test_the_dev_identities_replace_the_parameter_and_come_first() -> None:
    docs = admission.manifests(ADMISSION_DIR, OPERATOR_USERS)
    assert docs[0]["kind"] == "ConfigMap", "a binding without its parameter refuses everything"
    assert docs[0]["metadata"]["name"] == admission.PARAM_CONFIGMAP
    assert docs[0]["metadata"]["namespace"] == c.DEFAULT_OPERATOR_NAMESPACE
    assert docs[0]["data"]["operators"] == "spy-operator,spy-operator-2"
    bindings = [d["metadata"]["name"] for d in docs if d["kind"].endswith("PolicyBinding")]
    assert tuple(bindings) == admission.BINDINGS


def test_the_source_names_the_helm_identity_not_the_dev_users() -> None:
    text = (ADMISSION_DIR / "00-operators-configmap.yaml").read_text()
    assert "system:serviceaccount:spy-system:spy-operator" in text
    assert "spy-operator-2" not in text


@pytest.mark.parametrize(
    "doc",
    admission.manifests(ADMISSION_DIR, ("op",)),
    ids=lambda d: d["metadata"]["name"] + "/" + d["kind"],
)
def test_every_policy_fails_closed_and_every_binding_denies(doc: dict[str, object]) -> None:
    spec = doc.get("spec", {})
    assert isinstance(spec, dict)
    if doc["kind"] == "ValidatingAdmissionPolicy":
        assert spec["failurePolicy"] == "Fail"
        assert spec["paramKind"] == {"apiVersion": "v1", "kind": "ConfigMap"}
        for rule in spec["validations"]:
            # Each refusal names its rule (docs/safety-gate.md lists them).
            assert re.search(r"spyoptions bot-guard rule [a-z-]+: ", rule["messageExpression"])
    if doc["kind"] == "ValidatingAdmissionPolicyBinding":
        assert "Deny" in spec["validationActions"]
        assert spec["paramRef"]["parameterNotFoundAction"] == "Deny"
        assert spec["paramRef"]["name"] == admission.PARAM_CONFIGMAP


def test_the_bot_label_in_the_policies_is_the_operators() -> None:
    """The CEL spells the label out; it must match what build_bot_deployment puts on."""
    for path in ADMISSION_DIR.glob("*bot-guard*.yaml"):
        text = path.read_text()
        assert c.LABEL_COMPONENT in text and c.COMPONENT[c.KIND_BOT] in text, path.name
