"""The Helm chart without a cluster: lint, kubeconform, and what its objects must say
(CRDs identical to crds/, RBAC without wildcards, PSS restricted, namespaced mode with
no cluster-wide rights, schema errors that name the field). The admission objects:
test_chart_admission.py."""

from __future__ import annotations

import base64
from typing import Any

import pytest
import yaml
from delivery_support import CHART, by_kind, helm_template, kubeconform, run, tool
from spy_dev.devcluster import REPO_ROOT

ALL_ON = (
    "--set",
    "monitoring.serviceMonitor.enabled=true",
    "--set",
    "monitoring.prometheusRule.enabled=true",
    "--set",
    "monitoring.grafanaDashboard.enabled=true",
    "--set",
    "backend.ingress.enabled=true",
    "--set",
    "backend.ingress.host=spy.example.com",
    "--set",
    "backend.ingress.tlsSecretName=spy-tls",
    "--set",
    "backend.existingSecret=spy-backend-azure",
)
NAMESPACED = ("--set", "operator.watchNamespaces={spy-paper,spy-live}")
VALUE_SETS = {
    "defaults": (),
    "everything": ALL_ON,
    "namespaced": NAMESPACED + ALL_ON,
    "minimal": (
        "--set",
        "backend.enabled=false",
        "--set",
        "networkPolicy.enabled=false",
        "--set",
        "operator.replicas=1",
        "--set",
        "operator.leaderElection=false",
    ),
}


def test_chart_crds_equal_the_generated_crds() -> None:
    """Helm installs the chart's crds/; they must be exactly crds/*.yaml (make crds)."""
    ours = sorted(p.name for p in (REPO_ROOT / "crds").glob("*.yaml"))
    chart = sorted(p.name for p in (CHART / "crds").glob("*.yaml"))
    assert chart == ours
    for name in ours:
        assert (CHART / "crds" / name).read_bytes() == (REPO_ROOT / "crds" / name).read_bytes(), (
            f"helm/spy-options/crds/{name} differs from crds/{name}: "
            "cp crds/*.yaml helm/spy-options/crds/"
        )


@pytest.mark.parametrize("values", sorted(VALUE_SETS))
def test_helm_lint_strict(values: str) -> None:
    proc = run(tool("helm"), "lint", "--strict", str(CHART), *VALUE_SETS[values], check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 chart(s) failed" in proc.stdout


@pytest.mark.parametrize("values", sorted(VALUE_SETS))
def test_rendered_chart_passes_kubeconform_strict(values: str) -> None:
    objects = helm_template(*VALUE_SETS[values])
    proc = kubeconform(yaml.safe_dump_all(objects))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # Every object was checked against a schema: none skipped for want of one.
    assert "Skipped: 0" in proc.stdout, proc.stdout
    assert f"Valid: {len(objects)}" in proc.stdout, proc.stdout


def test_kubeconform_catches_a_wrong_field() -> None:
    """The schemas are strict: an unknown field in a Deployment is an error."""
    deployment = by_kind(helm_template(), "Deployment")[0]
    deployment["spec"]["replica"] = 2
    proc = kubeconform(yaml.safe_dump(deployment))
    assert proc.returncode != 0
    assert "replica" in proc.stdout


def operator_deployment(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return next(
        d for d in by_kind(objects, "Deployment") if d["metadata"]["name"].endswith("-operator")
    )


def _rules(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for o in objects if o["kind"] in ("Role", "ClusterRole") for r in o["rules"]]


@pytest.mark.parametrize("values", sorted(VALUE_SETS))
def test_rbac_has_no_wildcards_and_only_reads_secrets(values: str) -> None:
    rules = _rules(helm_template(*VALUE_SETS[values]))
    assert rules or values == "minimal"
    for rule in rules:
        for key in ("apiGroups", "resources", "verbs"):
            assert "*" not in rule.get(key, []), rule
        assert "nonResourceURLs" not in rule
        forbidden = {"deletecollection", "escalate", "bind", "impersonate"}
        assert not forbidden & set(rule["verbs"]), rule
        if "delete" in rule["verbs"]:
            # Only bot Deployments are ever deleted (the foreign-change rebuild).
            assert (rule["apiGroups"], rule["resources"]) == (["apps"], ["deployments"]), rule
        if "secrets" in rule["resources"]:
            assert set(rule["verbs"]) == {"get", "list", "watch"}, rule
        if "tradingbots" in rule["resources"]:
            # Argo CD owns the spec: the operator writes status only.
            assert set(rule["verbs"]) <= {"get", "list", "watch"}, rule


def test_namespaced_mode_has_no_cluster_wide_rights() -> None:
    """Only kopf's read-only observation of Namespaces and CRDs is cluster-wide."""
    objects = helm_template(*NAMESPACED)
    cluster_roles = by_kind(objects, "ClusterRole")
    assert [r["metadata"]["name"] for r in cluster_roles] == [
        "t-spy-options-operator-spy-system-observe"
    ]
    assert cluster_roles[0]["rules"] == [
        {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list", "watch"]},
        {
            "apiGroups": ["apiextensions.k8s.io"],
            "resources": ["customresourcedefinitions"],
            "verbs": ["get", "list", "watch"],
        },
    ]
    roles = {(o["metadata"]["namespace"], o["metadata"]["name"]) for o in by_kind(objects, "Role")}
    for ns in ("spy-paper", "spy-live", "spy-system"):
        assert (ns, "t-spy-options-operator") in roles
    args = operator_deployment(objects)["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--namespace=spy-paper" in args and "--namespace=spy-live" in args


def test_cluster_mode_uses_one_cluster_role() -> None:
    objects = helm_template()
    assert sorted(o["metadata"]["name"] for o in by_kind(objects, "ClusterRole")) == [
        "t-spy-options-operator-spy-system",
        "t-spy-options-operator-spy-system-observe",
    ]
    args = operator_deployment(objects)["spec"]["template"]["spec"]["containers"][0]["args"]
    assert not [a for a in args if a.startswith("--namespace=")]
    assert "--operator-namespace=spy-system" in args


@pytest.mark.parametrize("values", sorted(VALUE_SETS))
def test_pods_meet_pod_security_restricted(values: str) -> None:
    for dep in by_kind(helm_template(*VALUE_SETS[values]), "Deployment"):
        pod = dep["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        for container in pod["containers"]:
            sc = container["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False
            assert sc["capabilities"]["drop"] == ["ALL"]
            assert sc["readOnlyRootFilesystem"] is True
            assert sc["runAsNonRoot"] is True
            assert container["resources"]["limits"]["memory"]
        assert not any("hostPath" in v for v in pod.get("volumes", []))


def test_operator_runs_two_replicas_with_the_lease() -> None:
    objects = helm_template()
    operator = operator_deployment(objects)
    assert operator["spec"]["replicas"] == 2
    args = operator["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--no-leader-election" not in args
    lease_role = next(
        r for r in by_kind(objects, "Role") if r["metadata"]["name"].endswith("-leader")
    )
    assert {
        "apiGroups": ["coordination.k8s.io"],
        "resources": ["leases"],
        "resourceNames": ["spy-operator-leader"],
        "verbs": ["get", "update"],
    } in lease_role["rules"]
    assert by_kind(objects, "PodDisruptionBudget")


def test_network_policies_cover_each_workload_namespace() -> None:
    objects = helm_template(*NAMESPACED)
    policies = {
        (o["metadata"]["namespace"], o["metadata"]["name"]): o
        for o in by_kind(objects, "NetworkPolicy")
    }
    for ns in ("spy-paper", "spy-live"):
        egress = policies[(ns, "spyoptions-bot-detector-egress")]["spec"]
        assert egress["policyTypes"] == ["Egress"]
        targets = [peer for rule in egress["egress"] for peer in rule["to"]]
        assert {
            "app.kubernetes.io/component": "ib-gateway",
            "app.kubernetes.io/managed-by": "spy-operator",
        } in [t.get("podSelector", {}).get("matchLabels") for t in targets]
        ports = {p["port"] for rule in egress["egress"] for p in rule["ports"]}
        assert ports == {"tws-api", 8000, 53}
        ingress = policies[(ns, "spyoptions-gateway-api-ingress")]["spec"]
        assert ingress["ingress"][0]["ports"] == [{"port": "tws-api", "protocol": "TCP"}]


def test_monitoring_objects_follow_capabilities() -> None:
    """auto renders ServiceMonitor/PrometheusRule/dashboard only where the API is served."""
    kinds = {o["kind"] for o in helm_template()}
    assert not kinds & {"ServiceMonitor", "PrometheusRule"}
    with_api = helm_template(
        "--api-versions",
        "monitoring.coreos.com/v1/ServiceMonitor",
        "--api-versions",
        "monitoring.coreos.com/v1/PrometheusRule",
        "--api-versions",
        "monitoring.coreos.com/v1",
    )
    kinds = {o["kind"] for o in with_api}
    assert {"ServiceMonitor", "PrometheusRule"} <= kinds
    assert any(
        o["kind"] == "ConfigMap" and o["metadata"]["name"].endswith("-dashboard") for o in with_api
    )
    rule = by_kind(with_api, "PrometheusRule")[0]
    alerts = yaml.safe_load((CHART / "files" / "alerts.yaml").read_text())
    assert rule["spec"] == alerts


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("--set", "operator.replicas=0"), "replicas"),
        (("--set", "operator.watchNamespaces={Bad_NS}"), "watchNamespaces"),
        (("--set", "backend.environment=prod"), "environment"),
        (("--set", "monitoring.serviceMonitor.enabled=maybe"), "enabled"),
        (("--set", "operator.typo=1"), "typo"),
    ],
)
def test_schema_rejects_bad_values_naming_the_field(args: tuple[str, ...], field: str) -> None:
    proc = run(
        tool("helm"), "template", "t", str(CHART), "--kube-version", "1.34.2", *args, check=False
    )
    assert proc.returncode != 0
    assert "values don't meet the specifications of the schema" in proc.stderr
    assert field in proc.stderr


def test_leader_election_off_needs_one_replica() -> None:
    proc = run(
        tool("helm"),
        "template",
        "t",
        str(CHART),
        "--kube-version",
        "1.34.2",
        "--set",
        "operator.leaderElection=false",
        check=False,
    )
    assert proc.returncode != 0
    assert "operator.leaderElection=false needs operator.replicas=1" in proc.stderr


def test_operator_mounts_the_approval_key() -> None:
    """Without the key the gate holds every bot at 0 (ApprovalUnverified)."""
    objects = helm_template()
    pod = operator_deployment(objects)["spec"]["template"]["spec"]
    env = {e["name"]: e["value"] for e in pod["containers"][0]["env"]}
    assert env["SPY_APPROVAL_KEY_FILE"] == "/etc/spyoptions/approval/key"
    volume = next(v for v in pod["volumes"] if v["name"] == "approval-key")
    secret = next(
        o for o in by_kind(objects, "Secret") if o["metadata"]["name"].endswith("-approval-key")
    )
    assert volume["secret"]["secretName"] == secret["metadata"]["name"]
    assert len(base64.b64decode(secret["data"]["key"])) >= 32
    given = helm_template("--set", "approval.existingSecret=my-key")
    assert not [
        o for o in by_kind(given, "Secret") if o["metadata"]["name"].endswith("-approval-key")
    ]
    pod = operator_deployment(given)["spec"]["template"]["spec"]
    assert (
        next(v for v in pod["volumes"] if v["name"] == "approval-key")["secret"]["secretName"]
        == "my-key"
    )
