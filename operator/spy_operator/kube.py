"""A thin async client for the few API calls the reconcilers make.

kopf watches and caches (see world.py); writes go through here: server-side apply of
children under one field manager, merge patches of status, and the leader Lease.
Built from the same credentials kopf uses (kubeconfig or in-cluster service account).
"""

from __future__ import annotations

import base64
import json
import ssl
import tempfile
from collections.abc import Callable
from typing import Any

import aiohttp
import kopf

from spy_operator import constants as c
from spy_operator import metrics

_JSON = {"Content-Type": "application/json"}
_PLURALS = {
    "Deployment": "deployments",
    "StatefulSet": "statefulsets",
    "Service": "services",
    "Lease": "leases",
    "ServiceAccount": "serviceaccounts",
    "Role": "roles",
    "RoleBinding": "rolebindings",
}


class ApiError(Exception):
    """The API server refused a request (`status` is the HTTP status) or could not be
    reached (`status` 0)."""

    def __init__(self, status: int, message: str, retry_after: float | None = None) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        # Seconds the server asked us to wait (a 429's Status.details.retryAfterSeconds).
        self.retry_after = retry_after


def _pem(data: str | bytes) -> bytes:
    """Kubeconfig *-data fields are base64 of PEM; accept raw PEM too."""
    raw = data.encode() if isinstance(data, str) else data
    return raw if raw.lstrip().startswith(b"-----") else base64.b64decode(raw)


def _prefix(api_version: str) -> str:
    return "/api/v1" if api_version == "v1" else f"/apis/{api_version}"


def object_path(api_version: str, kind: str, namespace: str, name: str | None = None) -> str:
    plural = _PLURALS.get(kind) or c.PLURAL[kind]
    base = f"{_prefix(api_version)}/namespaces/{namespace}/{plural}"
    return f"{base}/{name}" if name else base


class Kube:
    def __init__(
        self, server: str, headers: dict[str, str], ssl_context: ssl.SSLContext | bool
    ) -> None:
        self.server = server.rstrip("/")
        self.headers = headers
        self.ssl_context = ssl_context
        self._session: aiohttp.ClientSession | None = None
        # Writes need this to say yes (the leader check, set by the controller), checked
        # at the moment of the write and not only when the work was picked up.
        self.may_write: Callable[[], bool] = lambda: True
        # Called on 401 to log in again (rotated service-account tokens).
        self.relogin: Callable[[], str | None] | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        # Created lazily inside the running loop (aiohttp binds sessions to it).
        if self._session is None:
            self._session = aiohttp.ClientSession(
                headers=self.headers,
                connector=aiohttp.TCPConnector(ssl=self.ssl_context, limit=32),
                timeout=aiohttp.ClientTimeout(total=30),
            )
        return self._session

    @classmethod
    def from_connection(cls, info: kopf.ConnectionInfo) -> Kube:
        verify: ssl.SSLContext | bool
        if info.insecure:
            verify = False
        else:
            verify = ssl.create_default_context()
            if info.ca_path:
                verify.load_verify_locations(cafile=info.ca_path)
            elif info.ca_data:
                verify.load_verify_locations(cadata=_pem(info.ca_data).decode())
            if info.certificate_path and info.private_key_path:
                verify.load_cert_chain(info.certificate_path, info.private_key_path)
            elif info.certificate_data and info.private_key_data:
                with tempfile.NamedTemporaryFile() as cert, tempfile.NamedTemporaryFile() as key:
                    cert.write(_pem(info.certificate_data))
                    key.write(_pem(info.private_key_data))
                    cert.flush()
                    key.flush()
                    verify.load_cert_chain(cert.name, key.name)
        headers = {"Accept": "application/json"}
        if info.token:
            headers["Authorization"] = f"{info.scheme or 'Bearer'} {info.token}"
        return cls(info.server, headers, verify)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def _request(
        self,
        verb: str,
        path: str,
        resource: str,
        params: dict[str, str] | None = None,
        content: str | None = None,
        headers: dict[str, str] | None = None,
        lowering: bool = False,
    ) -> dict[str, Any]:
        if verb != "GET":
            # A write that can only lower a bot's replicas is safe from any replica,
            # leader or not: it is how a standby or a just-restarted operator enforces
            # the gate before it holds the Lease (no blind window).
            if resource != "leases" and not lowering and not self.may_write():
                raise ApiError(0, "not the leader: write refused")
            metrics.API_WRITES.labels(verb=verb.lower(), resource=resource).inc()
        status, text = await self._send(verb, path, params, content, headers)
        if status == 401 and self.relogin is not None:
            token = self.relogin()
            if token:
                self.headers["Authorization"] = f"Bearer {token}"
                await self.close()  # the session holds the old header
                self._session = None
                status, text = await self._send(verb, path, params, content, headers)
        if status >= 400:
            retry_after = None
            try:
                reply = json.loads(text)
                message = reply.get("message", text)
                retry_after = float((reply.get("details") or {}).get("retryAfterSeconds") or 0)
            except (ValueError, AttributeError, TypeError):
                message = text
            raise ApiError(status, str(message)[:500], retry_after or None)
        body: dict[str, Any] = json.loads(text)
        return body

    async def _send(
        self,
        verb: str,
        path: str,
        params: dict[str, str] | None,
        content: str | None,
        headers: dict[str, str] | None,
    ) -> tuple[int, str]:
        try:
            async with self.session.request(
                verb, self.server + path, params=params, data=content, headers=headers
            ) as resp:
                return resp.status, await resp.text()
        except (aiohttp.ClientError, TimeoutError) as err:
            raise ApiError(0, f"{type(err).__name__}: {err}") from err

    async def apply(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply (force: the operator owns these fields of its children)."""
        meta = manifest["metadata"]
        path = object_path(
            manifest["apiVersion"], manifest["kind"], meta["namespace"], meta["name"]
        )
        return await self._request(
            "PATCH",
            path,
            _PLURALS.get(manifest["kind"], manifest["kind"]),
            params={"fieldManager": c.FIELD_MANAGER, "force": "true"},
            content=json.dumps(manifest),
            headers={"Content-Type": "application/apply-patch+yaml"},
        )

    async def merge_patch(
        self, api_version: str, kind: str, namespace: str, name: str, patch: dict[str, Any]
    ) -> dict[str, Any]:
        return await self._request(
            "PATCH",
            object_path(api_version, kind, namespace, name),
            _PLURALS.get(kind, kind),
            params={"fieldManager": c.FIELD_MANAGER},
            content=json.dumps(patch),
            headers={"Content-Type": "application/merge-patch+json"},
        )

    async def patch_status(
        self, kind: str, namespace: str, name: str, status: dict[str, Any]
    ) -> dict[str, Any]:
        path = object_path(c.API_VERSION, kind, namespace, name) + "/status"
        return await self._request(
            "PATCH",
            path,
            c.PLURAL[kind] + "/status",
            content=json.dumps({"status": status}),
            headers={"Content-Type": "application/merge-patch+json"},
        )

    async def get(self, path: str) -> dict[str, Any] | None:
        try:
            return await self._request("GET", path, "")
        except ApiError as err:
            if err.status == 404:
                return None
            raise

    async def create(self, path: str, body: dict[str, Any], resource: str) -> dict[str, Any]:
        return await self._request("POST", path, resource, content=json.dumps(body), headers=_JSON)

    async def replace(self, path: str, body: dict[str, Any], resource: str) -> dict[str, Any]:
        return await self._request("PUT", path, resource, content=json.dumps(body), headers=_JSON)

    async def scale(
        self, namespace: str, name: str, replicas: int, lowering: bool = False
    ) -> dict[str, Any]:
        """Set a Deployment's replicas through its /scale subresource.

        Replicas only: an admission policy that refuses the pod template (or a foreign
        field that breaks the apply) cannot block it. `lowering` marks a write that the
        caller has checked only lowers replicas (see `_request`)."""
        path = object_path("apps/v1", "Deployment", namespace, name) + "/scale"
        return await self._request(
            "PATCH",
            path,
            "deployments/scale",
            params={"fieldManager": c.FIELD_MANAGER},
            content=json.dumps({"spec": {"replicas": replicas}}),
            headers={"Content-Type": "application/merge-patch+json"},
            lowering=lowering,
        )

    async def delete(self, path: str, resource: str, propagation: str = "Background") -> None:
        """Delete; a missing object is not an error. With `Foreground` the object stays
        (with a deletionTimestamp) until its dependents, down to the pods, are gone."""
        try:
            await self._request(
                "DELETE",
                path,
                resource,
                content=json.dumps({"propagationPolicy": propagation}),
                headers=_JSON,
            )
        except ApiError as err:
            if err.status != 404:
                raise
