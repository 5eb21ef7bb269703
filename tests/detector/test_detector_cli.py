"""The command line as a user runs it: ``python -m spy_detector scan|run`` in a
subprocess, against files in tmp and servers on 127.0.0.1 only."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
from detector_sink import IngestSink
from detector_support import eventually
from spy_analytics import write_snapshot
from spy_analytics.synthetic import SyntheticMarket
from spy_detector.analysis import ChainAnalyzer
from spy_detector.sources.synthetic import EVERY_KIND

PY = sys.executable


def _recorded_synthetic(path: Path, snapshots: int = 2) -> Path:
    market = SyntheticMarket(seed=11)
    with path.open("w", encoding="utf-8") as fh:
        for _ in range(snapshots):
            syn = market.next_snapshot(EVERY_KIND)
            write_snapshot(fh, syn.snapshot, [label.to_json() for label in syn.labels])
    return path


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PY, "-m", "spy_detector", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_scan_prints_one_json_object_per_anomaly(tmp_path: Path) -> None:
    path = _recorded_synthetic(tmp_path / "chain.jsonl")
    proc = _cli("scan", str(path))
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert lines, "the injected anomalies are found"
    for obj in lines:
        assert {"kind", "contract", "severity", "score", "reason"} <= obj.keys()
        assert obj["severity"] in ("LOW", "MEDIUM", "HIGH")
        assert set(obj["contract"]) == {"expiry", "strike", "right"}
        assert obj["reason"]

    # exactly what the library finds on the same file, in the same order
    from spy_analytics import read_snapshots

    analyzer = ChainAnalyzer()
    expected = [
        (a["kind"], a["contract"], a["severity"])
        for snap in read_snapshots(path)
        for a in analyzer(snap).to_wire()["anomalies"]
    ]
    assert [(o["kind"], o["contract"], o["severity"]) for o in lines] == expected
    summary = json.loads(proc.stderr.strip().splitlines()[-1])
    assert summary["snapshots"] == 2 and summary["anomalies"] == len(lines)
    assert summary["bad_quotes"] > 0, "synthetic bad quotes are counted, not reported"


def test_scan_filters_and_errors(tmp_path: Path) -> None:
    path = _recorded_synthetic(tmp_path / "chain.jsonl", snapshots=1)
    high = _cli("scan", "--min-severity", "HIGH", str(path))
    assert high.returncode == 0
    assert all(json.loads(x)["severity"] == "HIGH" for x in high.stdout.splitlines())

    missing = _cli("scan", str(tmp_path / "nope.jsonl"))
    assert missing.returncode == 2 and "cannot read" in missing.stderr

    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert _cli("scan", str(empty)).returncode == 2

    bad = _cli("scan", "--thresholds", '{"no.such.setting": 1}', str(path))
    assert bad.returncode == 2 and "thresholds" in bad.stderr


def test_help() -> None:
    for args in (("--help",), ("run", "--help"), ("scan", "--help")):
        proc = _cli(*args)
        assert proc.returncode == 0 and "usage:" in proc.stdout
    assert "SPY_IB_CLIENT_ID" in _cli("run", "--help").stdout


def test_run_rejects_bad_env() -> None:
    proc = _cli("run", env={"SPY_SOURCE": "ibkr", "SPY_IB_CLIENT_ID": ""})
    assert proc.returncode == 2 and "SPY_IB_CLIENT_ID" in proc.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_run_service_synthetic_to_backend(ingest_sink: IngestSink, tmp_path: Path) -> None:
    """The real process: env -> synthetic feed -> analytics -> ingest, probes, SIGTERM."""
    port = _free_port()
    env = {
        **os.environ,
        "SPY_SOURCE": "synthetic",
        "SPY_SYNTHETIC_INTERVAL": "0.5",
        "HOSTNAME": "spy-detector-1",
        "SPY_SHARD_COUNT": "3",
        "SPY_BACKEND_URL": ingest_sink.url,
        "SPY_BACKEND_TOKEN": ingest_sink.token,
        "SPY_HTTP_HOST": "127.0.0.1",
        "SPY_HTTP_PORT": str(port),
    }
    log_path = tmp_path / "detector.log"  # a file, not a pipe: nothing can block the child
    log_file = log_path.open("w")
    proc = await asyncio.create_subprocess_exec(
        PY,
        "-m",
        "spy_detector",
        "run",
        env=env,
        stdout=log_file,
        stderr=log_file,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=2) as http:

            async def status(path: str) -> int:
                try:
                    return (await http.get(path)).status_code
                except httpx.TransportError:
                    return 0

            codes: list[int] = []

            async def probe() -> None:
                codes.append(await status("/readyz"))

            loop = asyncio.get_running_loop()
            deadline = loop.time() + 60
            while not codes or codes[-1] != 200:
                assert loop.time() < deadline, f"never ready: {codes[-5:]}"
                assert proc.returncode is None, "process exited early"
                await probe()
                await asyncio.sleep(0.05)
            await eventually(lambda: ingest_sink.count("market") >= 2, within=30, what="ingest")
            assert await status("/healthz") == 200
            metrics = (await http.get("/metrics")).text
        assert 'spy_detector_snapshots_total{source="synthetic"}' in metrics
        assert "spy_detector_anomalies_total{" in metrics
        assert ingest_sink.count("anomalies") > 0
        assert ingest_sink.count("gex") >= 2 and ingest_sink.count("flow") >= 2
        proc.send_signal(signal.SIGTERM)
        rc = await asyncio.wait_for(proc.wait(), 30)
        assert rc == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        log_file.close()
    stderr = log_path.read_text()
    started = [json.loads(x) for x in stderr.splitlines() if '"detector started"' in x]
    assert started and started[0]["shard"] == "1/3"
    assert ingest_sink.token not in stderr, "the token never reaches the logs"
