"""Monitoring: the PrometheusRule's alerts (promtool check + unit tests), the Grafana
dashboard's queries (each one parsed by promtool), and every metric they name exported
by the running operator, detector and backend processes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from delivery_support import CHART, run, tool
from k8s_support import Cluster, loopback_text, wait_for
from operator_support import OperatorProcess
from prometheus_client.parser import text_string_to_metric_families
from spy_backend.settings import DEV_INGEST_TOKEN
from spy_dev.azurite import Azurite
from spy_dev.devcluster import free_port
from spy_dev.devserver import BackendProcess

ALERTS = CHART / "files" / "alerts.yaml"
DASHBOARD = CHART / "files" / "dashboard.json"
ALERT_TESTS = Path(__file__).with_name("alerts_test.yaml")
# PromQL words that look like metric names but are not.
PROMQL_WORDS = {"by", "without", "and", "or", "unless", "offset", "on", "ignoring", "le"}
SUFFIXES = ("_total", "_bucket", "_sum", "_count", "_created")


def alert_exprs() -> dict[str, str]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return {rule["alert"]: rule["expr"] for g in groups for rule in g["rules"]}


def dashboard_exprs() -> dict[str, str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return {f"{p['title']}/{t['refId']}": t["expr"] for p in panels for t in p["targets"]}


def metric_names(expr: str) -> set[str]:
    """Our metric names in a PromQL expression (label names inside {} are skipped)."""
    without_labels = re.sub(r"\{[^}]*\}", "", expr)
    words = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", without_labels))
    return {w for w in words - PROMQL_WORDS if w.startswith("spy_")}


def family(name: str) -> str:
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def test_alert_rules_pass_promtool_check() -> None:
    out = run(tool("promtool"), "check", "rules", str(ALERTS)).stdout
    assert f"SUCCESS: {len(alert_exprs())} rules found" in out


def test_alert_rules_unit_tests() -> None:
    proc = run(tool("promtool"), "test", "rules", str(ALERT_TESTS), check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_required_alerts_exist() -> None:
    assert {
        "SpyBotArmedLongerThanApprovalWindow",
        "SpyBotArmedWhileHalted",
        "SpyGateRevertedScaleUp",
        "SpyGlobalHaltActive",
        "SpyDetectorStale",
        "SpyIBDisconnected",
        "SpyBackend5xx",
        "SpyVpnRttHigh",
        "SpyBotApprovalExpiringSoon",
    } <= set(alert_exprs())


def test_new_metrics_are_what_the_rules_and_dashboard_use() -> None:
    """The per-bot expiry, VPN RTT and staleness-by-age series are used (by these names)
    where they were missing: a rename on either side fails here and in the scrape test."""
    used = {n for e in {**alert_exprs(), **dashboard_exprs()}.values() for n in metric_names(e)}
    assert {
        "spy_operator_vpn_rtt_seconds",
        "spy_operator_bot_approval_expiry_timestamp_seconds",
        "spy_detector_last_snapshot_timestamp_seconds",
    } <= used


def test_every_dashboard_query_parses(tmp_path: Path) -> None:
    """No Grafana linter is available offline: each panel's query becomes a recording
    rule and promtool parses it; a broken query fails here."""
    exprs = dashboard_exprs()
    assert len(exprs) >= 15
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:panel_{i}", "expr": expr}
                    for i, expr in enumerate(exprs.values())
                ],
            }
        ]
    }
    path = tmp_path / "dashboard-rules.yaml"
    path.write_text(yaml.safe_dump(rules))
    out = run(tool("promtool"), "check", "rules", str(path)).stdout
    assert f"SUCCESS: {len(exprs)} rules found" in out


def test_promtool_rejects_a_broken_query(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "groups": [
                    {
                        "name": "g",
                        "rules": [
                            {
                                "record": "x",
                                "expr": "sum by (kind (rate(spy_operator_reconciles_total[5m]))",
                            }
                        ],
                    }
                ]
            }
        )
    )
    assert run(tool("promtool"), "check", "rules", str(path), check=False).returncode != 0


def scrape(url: str) -> set[str]:
    text = httpx.get(url, timeout=5).text
    return {f.name for f in text_string_to_metric_families(text)}


@pytest.fixture(scope="module")
def backend() -> Iterator[BackendProcess]:
    # Generous start-up timeouts: this shared 2-core machine is often heavily loaded.
    azurite = Azurite().start(timeout=120)
    proc = BackendProcess(
        {
            "SPY_BACKEND_ENVIRONMENT": "development",
            "SPY_BACKEND_STORAGE_CONNECTION_STRING": azurite.connection_string,
            "SPY_BACKEND_INGEST_TOKEN": DEV_INGEST_TOKEN,
        }
    ).start(timeout=180)
    try:
        yield proc
    finally:
        proc.stop()
        azurite.stop()


@pytest.fixture(scope="module")
def detector_metrics_url(backend: BackendProcess) -> Iterator[str]:
    """`python -m spy_detector run` on the synthetic feed, publishing to the backend."""
    port = free_port()
    env = {
        **os.environ,
        "SPY_SOURCE": "synthetic",
        "SPY_SYNTHETIC_INTERVAL": "0.5",
        "SPY_BACKEND_URL": backend.url,
        "SPY_BACKEND_TOKEN": DEV_INGEST_TOKEN,
        "SPY_HTTP_HOST": "127.0.0.1",
        "SPY_HTTP_PORT": str(port),
    }
    log = tempfile.TemporaryFile()  # noqa: SIM115  (a file, not a pipe: the child never blocks)
    proc = subprocess.Popen(
        [sys.executable, "-m", "spy_detector", "run"], env=env, stdout=log, stderr=log
    )
    url = f"http://127.0.0.1:{port}/metrics"
    try:

        def snapshots() -> bool:
            return 'spy_detector_snapshots_total{source="synthetic"}' in (loopback_text(url) or "")

        wait_for("detector analysing snapshots", snapshots, timeout=60, interval=0.5)
        yield url
    finally:
        proc.terminate()
        proc.wait(15)
        log.close()


def test_every_metric_the_rules_and_dashboard_use_is_exported(
    cluster: Cluster, tmp_path: Path, backend: BackendProcess, detector_metrics_url: str
) -> None:
    """Scrape the real processes: the operator (on the local control plane), a detector
    on the synthetic feed and the backend on Azurite (after a few requests)."""
    operator = OperatorProcess(cluster, tmp_path)
    operator.start()
    try:
        operator_url = f"http://127.0.0.1:{operator.metrics_port}/metrics"

        def leader_reported() -> set[str] | None:
            try:
                names = scrape(operator_url)
            except httpx.TransportError:
                return None
            return names if "spy_operator_leader" in names else None

        exported = wait_for("operator metrics", leader_reported, timeout=60, interval=0.5)
    finally:
        operator.stop()
    for path in ("/healthz", "/api/v1/anomalies", "/api/v1/no-such-route"):
        httpx.get(backend.url + path, timeout=5)
    exported |= scrape(backend.url + "/metrics")
    exported |= scrape(detector_metrics_url)

    used: dict[str, set[str]] = {}
    for where, expr in {**alert_exprs(), **dashboard_exprs()}.items():
        for name in metric_names(expr):
            used.setdefault(family(name), set()).add(where)
    assert len(used) >= 12
    missing = {name: sorted(wheres) for name, wheres in used.items() if name not in exported}
    assert not missing, f"metrics used by rules/dashboard but exported by nobody: {missing}"


def test_metric_name_extraction() -> None:
    expr = (
        "sum by (le, route) "
        '(rate(spy_backend_http_request_seconds_bucket{status=~"5..", x="spy_fake"}[5m]))'
    )
    assert metric_names(expr) == {"spy_backend_http_request_seconds_bucket"}
    assert family("spy_backend_http_request_seconds_bucket") == "spy_backend_http_request_seconds"
