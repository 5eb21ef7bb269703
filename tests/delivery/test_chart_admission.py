"""The chart's admission objects without a cluster (helm template): the bot-guard
policies rendered from the one source in deploy/admission/ with the release's
ServiceAccount as the exempt identity, and the approval webhook registered as the dev
cluster registers it (spy_dev.webhook), with a serving certificate signed by the CA in
its caBundle. On the cluster: test_chart_cluster.py."""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
from typing import Any

import pytest
import yaml
from cryptography import x509
from delivery_support import CHART, by_kind, helm_template
from spy_dev.devcluster import REPO_ROOT
from spy_dev.webhook import configuration
from spy_operator.webhook import PATH

SOURCE = REPO_ROOT / "deploy" / "admission"
COPY = CHART / "files" / "admission"
SA_USER = "system:serviceaccount:spy-system:t-spy-options-operator"
POLICY_KINDS = ("ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding")


def source_objects() -> dict[tuple[str, str], dict[str, Any]]:
    docs = [d for p in sorted(SOURCE.glob("*.yaml")) for d in yaml.safe_load_all(p.read_text())]
    return {(d["kind"], d["metadata"]["name"]): d for d in docs if d}


def test_chart_copy_equals_deploy_admission() -> None:
    """The chart reads files/admission/ (Helm sees only its own directory); it must be
    byte-identical to deploy/admission/, which `make cluster` applies (make crds)."""
    ours = sorted(p.name for p in SOURCE.glob("*.yaml"))
    assert ours and ours == sorted(p.name for p in COPY.glob("*.yaml"))
    for name in ours:
        assert (COPY / name).read_bytes() == (SOURCE / name).read_bytes(), (
            f"helm/spy-options/files/admission/{name} differs from deploy/admission/{name}: "
            "run make crds"
        )


def test_bot_guard_policies_are_the_source_under_release_names() -> None:
    objects = helm_template()
    source = source_objects()
    rendered = [o for kind in POLICY_KINDS for o in by_kind(objects, kind)]
    assert len(rendered) == len([k for k in source if k[0] in POLICY_KINDS]) == 4
    for obj in rendered:
        name = obj["metadata"]["name"]
        assert name.startswith("t-spy-options-bot-")
        original = source[(obj["kind"], name.replace("t-spy-options-", "spyoptions-"))]
        if obj["kind"] == "ValidatingAdmissionPolicy":
            assert obj["spec"] == original["spec"]  # every rule, word for word
        else:
            spec = obj["spec"]
            assert spec["policyName"] == name
            assert spec["validationActions"] == original["spec"]["validationActions"]
            assert spec["paramRef"] == {
                "name": "t-spy-options-admission",
                "namespace": "spy-system",
                "parameterNotFoundAction": "Deny",
            }
            assert "matchResources" not in spec  # cluster mode: every namespace
        assert obj["metadata"]["labels"]["app.kubernetes.io/instance"] == "t"


def test_bot_guard_exempts_exactly_the_release_service_account() -> None:
    params = [
        o
        for o in by_kind(helm_template(), "ConfigMap")
        if o["metadata"]["name"].endswith("-admission")
    ]
    assert [(p["metadata"]["namespace"], p["data"]["operators"]) for p in params] == [
        ("spy-system", SA_USER)
    ]
    given = helm_template("--set", "serviceAccount.create=false", "--set", "serviceAccount.name=op")
    operators = next(
        o["data"]["operators"]
        for o in by_kind(given, "ConfigMap")
        if o["metadata"]["name"].endswith("-admission")
    )
    assert operators == "system:serviceaccount:spy-system:op"


def test_namespaced_mode_binds_the_guard_and_the_webhook_to_the_watched_namespaces() -> None:
    objects = helm_template("--set", "operator.watchNamespaces={spy-paper,spy-live}")
    selector = {
        "matchExpressions": [
            {
                "key": "kubernetes.io/metadata.name",
                "operator": "In",
                "values": ["spy-paper", "spy-live"],
            }
        ]
    }
    bindings = by_kind(objects, "ValidatingAdmissionPolicyBinding")
    assert [b["spec"]["matchResources"]["namespaceSelector"] for b in bindings] == [selector] * 2
    hook = by_kind(objects, "MutatingWebhookConfiguration")[0]["webhooks"][0]
    assert hook["namespaceSelector"] == selector


def webhook_parts(objects: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    (config,) = by_kind(objects, "MutatingWebhookConfiguration")
    (secret,) = [o for o in by_kind(objects, "Secret") if o["metadata"]["name"].endswith("-tls")]
    return config["webhooks"][0], secret


def test_webhook_registration_matches_the_dev_cluster_and_the_served_path() -> None:
    hook, _ = webhook_parts(helm_template())
    dev = configuration(9443, b"ca")["webhooks"][0]
    client = hook.pop("clientConfig")
    dev.pop("clientConfig")
    assert hook == dev  # name, rules, failurePolicy Fail, sideEffects, timeout, versions
    assert client["service"] == {
        "name": "t-spy-options-operator-webhook",
        "namespace": "spy-system",
        "path": PATH,
        "port": 443,
    }


def _verify(ca_pem: bytes, cert_pem: bytes) -> x509.Certificate:
    ca = x509.load_pem_x509_certificate(ca_pem)
    cert = x509.load_pem_x509_certificate(cert_pem)
    cert.verify_directly_issued_by(ca)  # raises unless ca's key signed it
    assert cert.not_valid_after_utc > dt.datetime.now(dt.UTC) + dt.timedelta(days=365)
    return cert


def test_webhook_serving_certificate_is_signed_by_the_ca_bundle() -> None:
    hook, secret = webhook_parts(helm_template())
    ca_pem = base64.b64decode(hook["clientConfig"]["caBundle"])
    assert base64.b64decode(secret["data"]["ca.crt"]) == ca_pem
    cert = _verify(ca_pem, base64.b64decode(secret["data"]["tls.crt"]))
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "t-spy-options-operator-webhook.spy-system.svc" in sans.get_values_for_type(x509.DNSName)
    local = helm_template(
        "--set", "admission.approvalWebhook.url=https://127.0.0.1:9443/mutate-tradingbot",
        "--set", "admission.approvalWebhook.certIPs={127.0.0.1}",
    )  # fmt: skip
    hook, secret = webhook_parts(local)
    assert hook["clientConfig"]["url"] == "https://127.0.0.1:9443/mutate-tradingbot"
    assert "service" not in hook["clientConfig"]
    cert = x509.load_pem_x509_certificate(base64.b64decode(secret["data"]["tls.crt"]))
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("127.0.0.1") in sans.get_values_for_type(x509.IPAddress)


def test_operator_serves_the_webhook_with_the_mounted_certificate() -> None:
    objects = helm_template("--set", "approval.gitopsIdentities={argocd-sa,ci}")
    (dep,) = [
        o for o in by_kind(objects, "Deployment") if o["metadata"]["name"].endswith("-operator")
    ]
    pod = dep["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert "--webhook-port=9443" in container["args"]
    assert "--webhook-cert=/etc/spyoptions/webhook/tls.crt" in container["args"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["SPY_GITOPS_IDENTITIES"] == "argocd-sa,ci"
    assert (env["SPY_APPROVAL_MAX_HOURS"], env["SPY_LIVE_APPROVAL_MAX_HOURS"]) == ("8", "2")
    assert {"name": "webhook", "containerPort": 9443, "protocol": "TCP"} in container["ports"]
    volume = next(v for v in pod["volumes"] if v["name"] == "webhook-cert")
    assert volume["secret"]["secretName"] == "t-spy-options-operator-webhook-tls"
    (service,) = [
        o for o in by_kind(objects, "Service") if o["metadata"]["name"].endswith("-webhook")
    ]
    assert service["spec"]["ports"][0]["targetPort"] == "webhook"
    policy = next(
        p for p in by_kind(objects, "NetworkPolicy") if p["metadata"]["name"].endswith("-operator")
    )
    assert {"port": "webhook", "protocol": "TCP"} in policy["spec"]["ingress"][0]["ports"]


def test_cert_manager_issues_the_certificate_instead() -> None:
    objects = helm_template("--set", "admission.approvalWebhook.certManager.enabled=true")
    (config,) = by_kind(objects, "MutatingWebhookConfiguration")
    assert config["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == (
        "spy-system/t-spy-options-operator-webhook"
    )
    assert "caBundle" not in config["webhooks"][0]["clientConfig"]
    (cert,) = by_kind(objects, "Certificate")
    assert cert["spec"]["secretName"] == "t-spy-options-operator-webhook-tls"
    assert cert["spec"]["issuerRef"]["name"] == by_kind(objects, "Issuer")[0]["metadata"]["name"]
    assert not [o for o in by_kind(objects, "Secret") if o["metadata"]["name"].endswith("-tls")]


@pytest.mark.parametrize("point", ["botReplicasPolicy", "approvalWebhook"])
def test_each_guard_can_be_turned_off(point: str) -> None:
    objects = helm_template("--set", f"admission.{point}.enabled=false")
    kinds = {o["kind"] for o in objects}
    if point == "approvalWebhook":
        assert "MutatingWebhookConfiguration" not in kinds
        assert "ValidatingAdmissionPolicy" in kinds
        dep = next(o for o in by_kind(objects, "Deployment") if "operator" in o["metadata"]["name"])
        assert not [
            a for a in dep["spec"]["template"]["spec"]["containers"][0]["args"] if "webhook" in a
        ]
    else:
        assert not kinds & set(POLICY_KINDS)
        assert "MutatingWebhookConfiguration" in kinds
