"""The approval admission webhook's HTTPS endpoint: AdmissionReview v1 in, the
decision of admission.review out (a JSONPatch recording identities on allow, a 403
naming the rule on refusal).

Served by the operator (`--webhook-port`, next to the controller, or alone with
`--webhook-only`), registered as a MutatingWebhookConfiguration for TradingBot
CREATE/UPDATE with `failurePolicy: Fail`: while it is down, writes to TradingBot specs
are refused and existing bots keep their signed state (status writes do not pass
through it). The chart registers it through a Service; `make run` and the tests
register a loopback URL with their own CA (spy_dev.webhook).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import os
import ssl
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from aiohttp import web

from spy_operator.admission import Policy, review

log = logging.getLogger("spy_operator.webhook")

PATH = "/mutate-tradingbot"


class WebhookConfigError(RuntimeError):
    """The webhook or its key cannot be configured; the message says which setting."""


def key_from_env() -> bytes | None:
    """The signing key from SPY_APPROVAL_KEY_FILE (a mounted Secret); None if unset."""
    path = os.environ.get("SPY_APPROVAL_KEY_FILE")
    if not path:
        return None
    try:
        key = Path(path).read_bytes().strip()
    except OSError as err:
        raise WebhookConfigError(f"SPY_APPROVAL_KEY_FILE={path}: {err.strerror}") from err
    if len(key) < 32:
        raise WebhookConfigError(f"SPY_APPROVAL_KEY_FILE={path}: the key needs >= 32 bytes")
    return key


def policy_from_env() -> Policy:
    def hours(name: str, default: float) -> dt.timedelta:
        raw = os.environ.get(name, str(default))
        try:
            value = float(raw)
        except ValueError as err:
            raise WebhookConfigError(f"{name}={raw!r}: not a number of hours") from err
        if not 0 < value <= 24 * 7:
            raise WebhookConfigError(f"{name}={raw!r}: must be within (0, 168] hours")
        return dt.timedelta(hours=value)

    identities = os.environ.get("SPY_GITOPS_IDENTITIES", "")
    return Policy(
        gitops_identities=frozenset(i.strip() for i in identities.split(",") if i.strip()),
        max_approval=hours("SPY_APPROVAL_MAX_HOURS", 8),
        max_live_approval=hours("SPY_LIVE_APPROVAL_MAX_HOURS", 2),
    )


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def json_patch(existing: Mapping[str, str], changes: Mapping[str, str | None]) -> list[Any]:
    """RFC 6902 operations turning annotations `existing` into `existing + changes`."""
    ops: list[Any] = []
    if not existing and any(v is not None for v in changes.values()):
        ops.append({"op": "add", "path": "/metadata/annotations", "value": {}})
    for key, value in sorted(changes.items()):
        path = f"/metadata/annotations/{_escape(key)}"
        if value is None:
            if key in existing:
                ops.append({"op": "remove", "path": path})
        else:
            ops.append({"op": "add", "path": path, "value": value})
    return ops


def respond(
    body: Mapping[str, Any], policy: Policy, key: bytes, now: dt.datetime
) -> dict[str, Any]:
    """The AdmissionReview response to one AdmissionReview request. Pure."""
    req = body.get("request") or {}
    obj = req.get("object") or {}
    user = str((req.get("userInfo") or {}).get("username") or "")
    result = review(
        str(req.get("operation") or ""), user, obj, req.get("oldObject"), policy, now, key
    )
    resp: dict[str, Any] = {"uid": req.get("uid", ""), "allowed": result.allowed}
    if not result.allowed:
        resp["status"] = {"code": 403, "reason": "Forbidden", "message": result.message}
    elif result.annotations:
        existing = (obj.get("metadata") or {}).get("annotations") or {}
        patch = json_patch(existing, result.annotations)
        if patch:
            resp["patchType"] = "JSONPatch"
            resp["patch"] = base64.b64encode(json.dumps(patch).encode()).decode()
    meta = obj.get("metadata") or {}
    log.info(
        "approval review",
        extra={
            "object": f"{meta.get('namespace')}/{meta.get('name')}",
            "user": user,
            "operation": req.get("operation"),
            "allowed": result.allowed,
            "detail": result.message,
        },
    )
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": resp}


async def serve(
    port: int,
    cert_file: str,
    key_file: str,
    policy: Policy,
    key: bytes,
    host: str = "0.0.0.0",
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
) -> web.AppRunner:
    """Start the HTTPS endpoint; returns the runner (cleanup() stops it)."""

    async def mutate(request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return web.json_response({"error": "body is not JSON"}, status=400)
        return web.json_response(respond(body, policy, key, clock()))

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application(client_max_size=4 * 1024 * 1024)
    app.router.add_post(PATH, mutate)
    app.router.add_get("/healthz", healthz)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert_file, key_file)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port, ssl_context=tls).start()
    log.info("approval webhook serving", extra={"port": port, "path": PATH})
    return runner
