"""No secret or token in any log line (issue 12, finding 4): a full run of
`python -m spy_backend` at its default log level (uvicorn's access log on) through
every path that handles a credential, and the refused-settings message at startup.
Every log line of the process (stdout and stderr) is searched for every value."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import jwt
import websockets
from spy_backend.realtime import SUBPROTOCOL
from spy_backend.settings import AZURITE_ACCOUNT_KEY
from spy_dev.azurite import free_port

from ._support import anomaly


def clean_env(**settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPY_BACKEND_")}
    env.update({f"SPY_BACKEND_{k.upper()}": v for k, v in settings.items()})
    return env


def leaked(log: str, secrets: dict[str, str]) -> list[str]:
    """Names of the secrets whose value (or its last 12 characters) is in the log."""
    return [name for name, value in secrets.items() if value in log or value[-12:] in log]


async def exercise(url: str, ingest_token: str, wrong_token: str) -> list[str]:
    """Every credential path once; returns the access tokens the backend handed out."""
    tokens: list[str] = []
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        for _ in range(2):
            negotiated = (await http.get("/api/v1/negotiate")).json()["url"]
            tokens.append(negotiated.split("access_token=", 1)[1])
        ws = await websockets.connect(negotiated, subprotocols=[SUBPROTOCOL])  # type: ignore[list-item]
        await ws.recv()
        await ws.send(json.dumps({"type": "joinGroup", "group": "SPY", "ackId": 1}))
        await ws.recv()
        good = {"Authorization": f"Bearer {ingest_token}"}
        assert (
            await http.post("/api/v1/ingest", json={"anomalies": [anomaly()]}, headers=good)
        ).status_code == 200
        await ws.recv()  # the broadcast
        await ws.close()
        bad = {"Authorization": f"Bearer {wrong_token}"}
        assert (await http.post("/api/v1/ingest", json={}, headers=bad)).status_code == 403
        # A token in a query string, where uvicorn's access log writes it.
        await http.get("/api/v1/flow", params={"access_token": tokens[0]})
    forged = jwt.encode({"aud": "x/client/hubs/spy", "exp": 2_000_000_000}, "k" * 32)
    tokens.append(forged)
    # Refused, as it should be; only its log line matters here.
    with contextlib.suppress(websockets.exceptions.InvalidStatus):
        await websockets.connect(
            negotiated.split("?")[0] + f"?access_token={forged}",
            subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
        )
    return tokens


def test_a_full_run_logs_no_secret_or_token(azurite: Any, tmp_path: Path) -> None:
    ingest_token = "log-test-ingest-" + uuid.uuid4().hex
    hub_key = "log-test-hub-key-" + uuid.uuid4().hex
    wrong_token = "log-test-wrong-" + uuid.uuid4().hex
    port = free_port()
    env = clean_env(
        environment="test",
        ingest_token=ingest_token,
        local_hub_key=hub_key,
        storage_connection_string=azurite.connection_string,
        table_prefix="logs" + uuid.uuid4().hex[:8],
    )
    log_path = tmp_path / "backend.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "spy_backend", "--port", str(port)],  # default level: info
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    assert time.monotonic() < deadline and process.poll() is None
                    time.sleep(0.05)
            tokens = asyncio.run(exercise(url, ingest_token, wrong_token))
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(15)
    log = log_path.read_text()
    # The run really logged what the attack found leaking: access log and handshakes.
    assert '"GET /api/v1/negotiate HTTP/1.1" 200' in log, log[-2000:]
    assert '"WebSocket /client/hubs/spy?access_token=' in log, log[-2000:]
    secrets = {
        "ingest_token": ingest_token,
        "local_hub_key": hub_key,
        "wrong_token": wrong_token,
        "azurite_account_key": AZURITE_ACCOUNT_KEY,
        **{f"access_token_{i}": t for i, t in enumerate(tokens)},
    }
    assert leaked(log, secrets) == [], log[-3000:]


def test_refused_settings_name_the_fields_and_never_echo_a_value() -> None:
    hub_key = "refused-hub-key-" + uuid.uuid4().hex
    short_token = "short-" + uuid.uuid4().hex[:12]
    account_key = "c2VjcmV0LWFjY291bnQta2V5LQ" + uuid.uuid4().hex
    storage = (
        "DefaultEndpointsProtocol=https;AccountName=prod;"
        f"AccountKey={account_key};EndpointSuffix=core.windows.net"
    )
    unsafe = clean_env(
        environment="production",
        ingest_token=short_token,
        local_hub_key=hub_key,
        storage_connection_string=storage,
    )
    malformed = clean_env(
        environment="production",
        local_hub_key=hub_key,
        public_url=f"https://user:{hub_key}@desk.example",
        client_token_minutes=f"sixty-{short_token}",
    )
    for env, fields in (
        (unsafe, ["ingest_token"]),
        (malformed, ["public_url", "client_token_minutes"]),
    ):
        run = subprocess.run(
            [sys.executable, "-m", "spy_backend"],
            env=env,
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
        )
        output = run.stdout + run.stderr
        assert run.returncode == 2, output
        for field in fields:
            assert field in output, output
        secrets = {"hub_key": hub_key, "short_token": short_token, "account_key": account_key}
        assert leaked(output, secrets) == [], output
