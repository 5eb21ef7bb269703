"""terraform/logs/fluent-bit.yaml against terraform/logs.tf (the DCR and its table).

No Fluent Bit binary is installable here (Debian bookworm does not ship it, and no
registry this project uses carries it), so `fluent-bit --dry-run` is out of reach.
This test parses the config and runs a record through a model of the filters used
(kubernetes merge, nest lift, modify rename/remove): every field that reaches the
output must be a column the DCR stream declares, and the table name must be the
Terraform one, or the Logs Ingestion API would drop the data.
"""

from __future__ import annotations

import json
from typing import Any

import yaml
from azure_support import TERRAFORM, tf

CONFIG = TERRAFORM / "logs" / "fluent-bit.yaml"
KNOWN = {"tail", "kubernetes", "nest", "modify", "azure_logs_ingestion"}


def config() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(CONFIG.read_text())
    return doc


def flow(record: dict[str, Any], meta: dict[str, Any]) -> dict[str, Any]:
    """Apply the filters of the config, in order, to one tail record."""
    rec = dict(record)
    for f in config()["pipeline"]["filters"]:
        name = f["name"]
        if name == "kubernetes":
            rec["kubernetes"] = meta
            if f.get("merge_log") is True:
                try:
                    parsed = json.loads(rec["log"])
                except json.JSONDecodeError:
                    parsed = None
                if isinstance(parsed, dict):
                    rec[f["merge_log_key"]] = parsed
                    if f.get("keep_log") is False:
                        del rec["log"]
        elif name == "nest":
            assert f["operation"] == "lift"
            inner = rec.pop(f["nested_under"], {})
            rec.update({f"{f.get('add_prefix', '')}{k}": v for k, v in inner.items()})
        elif name == "modify":
            if "rename" in f:
                old, new = f["rename"].split()
                if old in rec:
                    rec[new] = rec.pop(old)
            if "remove" in f:
                rec.pop(f["remove"], None)
            if "remove_wildcard" in f:
                rec = {k: v for k, v in rec.items() if not k.startswith(f["remove_wildcard"])}
        else:
            raise AssertionError(f"filter {name} is not modelled by this test")
    return rec


META = {
    "namespace_name": "spy-system",
    "pod_name": "spy-operator-7d9c-abcde",
    "container_name": "operator",
    "pod_id": "0b7f",
    "host": "node-1",
}


def test_config_uses_only_known_plugins_and_the_terraform_table() -> None:
    pipe = config()["pipeline"]
    names = {p["name"] for section in ("inputs", "filters", "outputs") for p in pipe[section]}
    assert names <= KNOWN, names - KNOWN
    (out,) = pipe["outputs"]
    assert out["name"] == "azure_logs_ingestion"
    assert out["table_name"] == tf()["locals"]["log_table"]
    assert tf()["locals"]["log_stream"] == "Custom-${local.log_table}"  # Fluent Bit's URL shape
    assert out["time_generated"] is True and out["time_key"] == "TimeGenerated"
    for key in ("tenant_id", "client_id", "client_secret", "dce_url", "dcr_id"):
        assert out[key].startswith("${"), f"{key} must come from the environment, not the file"
    (tail,) = pipe["inputs"]
    assert tail["path"].startswith("/var/log/containers/")


def columns() -> set[str]:
    return set(tf()["locals"]["log_columns"])


def test_json_log_line_reaches_the_output_as_declared_columns() -> None:
    line = {
        "ts": "2026-12-02T10:00:00.000+00:00",
        "level": "INFO",
        "logger": "x",
        "msg": "bot armed",
    }
    tail = {"time": "2026-12-02T10:00:00Z", "stream": "stderr", "_p": "F", "log": json.dumps(line)}
    rec = flow(tail, META)
    rec.pop("time")  # the record's timestamp; time_generated writes it as TimeGenerated
    assert set(rec) | {"TimeGenerated"} <= columns(), set(rec) - columns()
    assert rec["Record"]["msg"] == "bot armed"
    assert (rec["Namespace"], rec["Container"], rec["Stream"]) == (
        "spy-system",
        "operator",
        "stderr",
    )


def test_plain_text_line_keeps_its_text_in_log() -> None:
    tail = {"time": "t", "stream": "stdout", "_p": "F", "log": "Traceback (most recent call last):"}
    rec = flow(tail, META)
    rec.pop("time")
    assert set(rec) <= columns(), set(rec) - columns()
    assert rec["Log"].startswith("Traceback")


def test_dcr_transform_reads_both_json_log_shapes() -> None:
    kql = tf()["resource"]["azurerm_monitor_data_collection_rule"]["logs"]["data_flow"][0]
    text = kql["transform_kql"]
    for field in ("Record.level", "Record.severity", "Record.msg", "Record.message", "Log"):
        assert field in text  # spy_detector.logs and kopf's JSON formatter
