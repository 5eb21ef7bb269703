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
from spy_dev.fake_tws import FakeTWS

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


async def _run_detector(
    extra_env: dict[str, str], sink: IngestSink, tmp_path: Path
) -> tuple[str, str]:
    """Start ``python -m spy_detector run`` with ``extra_env``, wait until /readyz is 200
    and two snapshots reached the sink, SIGTERM it; returns (/metrics text, log)."""
    port = _free_port()
    env = {
        **os.environ,
        **extra_env,
        "SPY_BACKEND_URL": sink.url,
        "SPY_BACKEND_TOKEN": sink.token,
        "SPY_HTTP_HOST": "127.0.0.1",
        "SPY_HTTP_PORT": str(port),
    }
    log_path = tmp_path / "detector.log"  # a file, not a pipe: nothing can block the child
    log_file = log_path.open("w")
    proc = await asyncio.create_subprocess_exec(
        PY, "-m", "spy_detector", "run", env=env, stdout=log_file, stderr=log_file
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=2) as http:

            async def status(path: str) -> int:
                try:
                    return (await http.get(path)).status_code
                except httpx.TransportError:
                    return 0

            codes: list[int] = []
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 60
            while not codes or codes[-1] != 200:
                assert loop.time() < deadline, f"never ready: {codes[-5:]}"
                assert proc.returncode is None, "process exited early"
                codes.append(await status("/readyz"))
                await asyncio.sleep(0.05)
            await eventually(lambda: sink.count("market") >= 2, within=30, what="ingest")
            assert await status("/healthz") == 200
            metrics = (await http.get("/metrics")).text
        proc.send_signal(signal.SIGTERM)
        rc = await asyncio.wait_for(proc.wait(), 30)
        assert rc == 0, "SIGTERM is a clean exit"
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        log_file.close()
    log = log_path.read_text()
    assert sink.token not in log, "the token never reaches the logs"
    return metrics, log


def _started(log: str) -> dict[str, object]:
    lines = [json.loads(x) for x in log.splitlines() if '"detector started"' in x]
    assert lines, log[-2000:]
    return lines[0]


async def test_run_service_synthetic_to_backend(ingest_sink: IngestSink, tmp_path: Path) -> None:
    """The real process: env -> synthetic feed -> analytics -> ingest, probes, SIGTERM."""
    env = {
        "SPY_SOURCE": "synthetic",
        "SPY_SYNTHETIC_INTERVAL": "0.5",
        "HOSTNAME": "spy-detector-1",
        "SPY_SHARD_COUNT": "3",
    }
    metrics, log = await _run_detector(env, ingest_sink, tmp_path)
    assert 'spy_detector_snapshots_total{source="synthetic"}' in metrics
    assert "spy_detector_anomalies_total{" in metrics
    assert ingest_sink.count("anomalies") > 0
    assert ingest_sink.count("gex") >= 2 and ingest_sink.count("flow") >= 2
    assert _started(log)["shard"] == "1/3"


async def test_run_service_against_gateway_stand_in(
    fake_tws: FakeTWS, ingest_sink: IngestSink, tmp_path: Path
) -> None:
    """The StatefulSet's env for pod ordinal 1 of 3 against the protocol-level IB Gateway
    stand-in: client id = base + ordinal, delayed data, this shard's expiries only."""
    env = {
        "SPY_SOURCE": "ibkr",
        "HOSTNAME": "spy-detector-1",
        "SPY_SHARD_COUNT": "3",
        "SPY_IB_HOST": "127.0.0.1",
        "SPY_IB_PORT": str(fake_tws.port),
        "SPY_IB_CLIENT_ID_BASE": "100",
        "SPY_IB_MARKET_DATA_TYPE": "delayed",
        "SPY_STRIKE_RANGE": "0.02",
        "SPY_SNAPSHOT_INTERVAL": "0.3",
    }
    metrics, log = await _run_detector(env, ingest_sink, tmp_path)
    assert fake_tws.started == [101]
    assert [f[2] for f in fake_tws.requests_of(59)] == ["3"]
    assert 'spy_detector_snapshots_total{source="ibkr"}' in metrics
    assert 'spy_detector_ib_connection_state{spy_detector_ib_connection_state="connected"} 1.0' in (
        metrics
    )
    # shard 1 of 3 owns expiry indices 1 and 4 and reads 2 and 5 (the next ones) for the
    # calendar rule: option market data requested only for them
    exps = fake_tws.chain.expiries
    mine = {exps[1], exps[4], exps[2], exps[5]}
    option_reqs = [f for f in fake_tws.requests_of(1) if f[5] == "OPT"]
    assert option_reqs and {f[6] for f in option_reqs} == mine
    assert _started(log)["ib"] == f"127.0.0.1:{fake_tws.port} client 101"
