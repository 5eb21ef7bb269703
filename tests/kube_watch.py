"""A plain HTTP client built from a kubeconfig, and list+watch caches (reflectors).

Used by the gate invariant watcher (gate_invariant.py) to see the cluster at 10 Hz
without polling it: one watch per resource keeps a local copy current, and a sample
reads the copies. Also used by the chaos harness (chaos_*.py) for its own writes,
which must not spawn a kubectl process per call.
"""

from __future__ import annotations

import base64
import contextlib
import json
import ssl
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import yaml

Body = dict[str, Any]
Key = tuple[str, str]  # (namespace, name)


def _pem(data: str) -> bytes:
    return base64.b64decode(data)


def client_options(kubeconfig: Path, context: str | None = None) -> dict[str, Any]:
    """httpx options (base_url, headers, verify) for one kubeconfig context.

    Covers what the test clusters use: bearer tokens (the dev control plane) and
    client certificates (kind, k3s), with the CA as a file or inline data.
    """
    config = yaml.safe_load(kubeconfig.read_text())
    name = context or config.get("current-context")
    ctx = next(c["context"] for c in config["contexts"] if c["name"] == name)
    cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == ctx["cluster"])
    user = next(u["user"] for u in config["users"] if u["name"] == ctx["user"])
    verify: ssl.SSLContext | bool
    if cluster.get("insecure-skip-tls-verify"):
        verify = False
    else:
        verify = ssl.create_default_context()
        if "certificate-authority" in cluster:
            verify.load_verify_locations(cafile=cluster["certificate-authority"])
        elif "certificate-authority-data" in cluster:
            verify.load_verify_locations(
                cadata=_pem(cluster["certificate-authority-data"]).decode()
            )
        if "client-certificate" in user:
            verify.load_cert_chain(user["client-certificate"], user["client-key"])
        elif "client-certificate-data" in user:
            with tempfile.NamedTemporaryFile() as cert, tempfile.NamedTemporaryFile() as key:
                cert.write(_pem(user["client-certificate-data"]))
                key.write(_pem(user["client-key-data"]))
                cert.flush()
                key.flush()
                verify.load_cert_chain(cert.name, key.name)
    headers = {"Accept": "application/json"}
    if user.get("token"):
        headers["Authorization"] = f"Bearer {user['token']}"
    return {"base_url": cluster["server"], "headers": headers, "verify": verify}


def api_client(kubeconfig: Path, context: str | None = None, timeout: float = 10) -> httpx.Client:
    return httpx.Client(**client_options(kubeconfig, context), timeout=timeout)


class Reflector(threading.Thread):
    """A local copy of one resource collection, kept by list, then watch, then re-list.

    `synced` is true only while the copy is known current (listed, watch open); a
    broken watch clears it until the next list succeeds, so a sampler never mistakes
    an apiserver outage for a quiet cluster. `reduce` turns an object into what is
    kept (the secret reflector keeps facts, never secret values).
    """

    def __init__(
        self,
        client_factory: Callable[[], httpx.Client],
        path: str,
        params: dict[str, str] | None = None,
        reduce: Callable[[Body], Any] = lambda body: body,
    ) -> None:
        super().__init__(daemon=True, name=f"reflector {path}")
        self.client_factory = client_factory
        self.path = path
        self.params = dict(params or {})
        self.reduce = reduce
        self.items: dict[Key, Any] = {}
        self.synced = False
        self.relists = 0
        self._stopping = threading.Event()
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()

    def copy(self) -> dict[Key, Any]:
        with self._lock:
            return dict(self.items)

    @staticmethod
    def _key(body: Body) -> Key:
        meta = body.get("metadata", {})
        return (meta.get("namespace", ""), meta.get("name", ""))

    def _list(self, client: httpx.Client) -> str:
        resp = client.get(self.path, params=self.params, timeout=10)
        resp.raise_for_status()
        listing = resp.json()
        items = {self._key(obj): self.reduce(obj) for obj in listing.get("items", [])}
        with self._lock:
            self.items = items
        self.relists += 1
        return str(listing["metadata"]["resourceVersion"])

    def _watch(self, client: httpx.Client, rv: str) -> None:
        params = {
            **self.params,
            "watch": "1",
            "resourceVersion": rv,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": "30",
        }
        timeout = httpx.Timeout(10, read=45)
        with client.stream("GET", self.path, params=params, timeout=timeout) as resp:
            resp.raise_for_status()
            self.synced = True
            for line in resp.iter_lines():
                if self._stopping.is_set():
                    return
                if not line:
                    continue
                event = json.loads(line)
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    return  # 410 Gone and friends: list again
                if kind == "BOOKMARK":
                    continue
                with self._lock:
                    if kind == "DELETED":
                        self.items.pop(self._key(obj), None)
                    else:
                        self.items[self._key(obj)] = self.reduce(obj)

    def run(self) -> None:
        while not self._stopping.is_set():
            self.synced = False
            try:
                with self.client_factory() as client:
                    self._client = client
                    rv = self._list(client)
                    self._watch(client, rv)
            # The apiserver stopped, froze or restarted, or the watch expired: the copy
            # is not current until the next list.
            except (httpx.HTTPError, OSError, ValueError, KeyError, RuntimeError):
                self._stopping.wait(0.2)
            finally:
                self._client = None
        self.synced = False

    def stop(self) -> None:
        self._stopping.set()
        client = self._client
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()  # unblocks a read waiting on the watch stream


def wait_synced(reflectors: list[Reflector], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(r.synced for r in reflectors):
            return
        time.sleep(0.05)
    stale = [r.path for r in reflectors if not r.synced]
    raise AssertionError(f"watches not synced after {timeout:.0f} s: {stale}")
