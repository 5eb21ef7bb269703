"""Reads the bot's own TradingBot from the Kubernetes API (one GET on one object).

``service.Bot`` calls ``TradingBotReader.get()`` before every order and on a timer.
Credentials: the pod's service-account token and CA (in-cluster), or a kubeconfig
(``KUBECONFIG``; token, token file or client certificate) for a bot run outside the
cluster. RBAC needed: ``get`` on ``tradingbots`` with ``resourceNames: [<its name>]``.

Never raises: any failure (network, TLS, 403, 404, bad JSON) returns None with the
reason in ``last_error``, and the caller refuses to trade (fail closed). The token is
never logged.
"""

from __future__ import annotations

import base64
import os
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

GROUP_PATH = "/apis/spyoptions.io/v1alpha1"
SA_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


class KubeConfigError(ValueError):
    """The kubeconfig or in-cluster environment is unusable; the message says why."""


@dataclass(frozen=True)
class Credentials:
    server: str
    token: str
    token_file: str  # read on every call: projected service-account tokens rotate
    ssl: ssl.SSLContext


def in_cluster(env: dict[str, str]) -> Credentials:
    host, port = env.get("KUBERNETES_SERVICE_HOST", ""), env.get("KUBERNETES_SERVICE_PORT", "")
    if not host or not (SA_DIR / "token").exists():
        raise KubeConfigError("not in a cluster (no service account) and KUBECONFIG is not set")
    ctx = ssl.create_default_context(cafile=str(SA_DIR / "ca.crt"))
    host = f"[{host}]" if ":" in host else host
    return Credentials(f"https://{host}:{port}", "", str(SA_DIR / "token"), ctx)


def from_kubeconfig(path: str) -> Credentials:
    try:
        config = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        current = config.get("current-context")
        context = next(c["context"] for c in config["contexts"] if c["name"] == current)
        cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == context["cluster"])
        user = next(u["user"] for u in config["users"] if u["name"] == context["user"])
    except (OSError, yaml.YAMLError, KeyError, StopIteration, TypeError) as exc:
        raise KubeConfigError(f"kubeconfig {path}: unusable ({type(exc).__name__}: {exc})") from exc
    ctx = ssl.create_default_context()
    if cluster.get("insecure-skip-tls-verify"):
        raise KubeConfigError("kubeconfig: insecure-skip-tls-verify is refused for a trading bot")
    if "certificate-authority-data" in cluster:
        ctx = ssl.create_default_context(
            cadata=base64.b64decode(cluster["certificate-authority-data"]).decode()
        )
    elif "certificate-authority" in cluster:
        ctx = ssl.create_default_context(cafile=cluster["certificate-authority"])
    token = str(user.get("token") or "")
    token_file = str(user.get("tokenFile") or "")
    if "client-certificate-data" in user:
        with tempfile.TemporaryDirectory() as tmp:
            cert, key = Path(tmp, "c.pem"), Path(tmp, "k.pem")
            cert.write_bytes(base64.b64decode(user["client-certificate-data"]))
            key.write_bytes(base64.b64decode(user["client-key-data"]))
            ctx.load_cert_chain(str(cert), str(key))
    elif "client-certificate" in user:
        ctx.load_cert_chain(user["client-certificate"], user["client-key"])
    return Credentials(str(cluster["server"]).rstrip("/"), token, token_file, ctx)


def credentials(kubeconfig: str) -> Credentials:
    return from_kubeconfig(kubeconfig) if kubeconfig else in_cluster(dict(os.environ))


class TradingBotReader:
    def __init__(self, creds: Credentials, namespace: str, name: str, timeout: float = 2.0) -> None:
        self._creds = creds
        self._url = f"{creds.server}{GROUP_PATH}/namespaces/{namespace}/tradingbots/{name}"
        self._client = httpx.AsyncClient(verify=creds.ssl, timeout=timeout)
        self.last_error = ""

    def _token(self) -> str:
        if self._creds.token or not self._creds.token_file:
            return self._creds.token
        return Path(self._creds.token_file).read_text(encoding="utf-8").strip()

    async def get(self) -> dict[str, Any] | None:
        try:
            token = self._token()
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            resp = await self._client.get(self._url, headers=headers)
            if resp.status_code != 200:
                self.last_error = f"GET own TradingBot: HTTP {resp.status_code}"
                return None
            body = resp.json()
        except (httpx.HTTPError, OSError, ValueError) as exc:
            # fail closed: whatever went wrong, the caller sees "unreadable" and refuses
            self.last_error = f"GET own TradingBot: {type(exc).__name__}: {exc}"
            return None
        if not isinstance(body, dict):
            self.last_error = "GET own TradingBot: not a JSON object"
            return None
        self.last_error = ""
        return body

    async def close(self) -> None:
        await self._client.aclose()
