"""Pure-ASGI guards that run before any route reads a request (wired by `app.create_app`).

- `BodyLimit`: 413 on a declared Content-Length over the limit, and on a chunked body
  that grows past it (buffered here, so no parser ever sees a truncated body).
- `IngestAuthGate`: the ingest token is checked from the headers alone; an
  unauthenticated POST is answered 401/403 before one byte of its body is read.
- `MethodGuard`: a path the API serves answers other methods with 405 and `Allow`,
  even where the dashboard's static files are mounted at `/`.
- `TransportAbort`: hands the hub a way to drop a stalled WebSocket's TCP connection.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterable

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from spy_backend.realtime.local_hub import ABORT_EXTENSION

_BODY_METHODS = {"POST", "PUT", "PATCH"}


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


class BodyLimit:
    """Answer 413 to request bodies over `max_bytes` before anything parses them."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = _header(scope, b"content-length")
        if length is not None:
            if not length.isdigit() or int(length) > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
            # The server reads exactly the declared length: nothing more to check.
            await self.app(scope, receive, send)
            return
        if scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        # Chunked (no declared size): read it here up to the limit, then replay it.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()  # after the body: wait for the disconnect
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = {"detail": f"request body larger than {self.max_bytes} bytes"}
        # Connection: close, so the unread rest of the body is not parsed as a request.
        response = JSONResponse(body, status_code=413, headers={"Connection": "close"})
        await response(scope, receive, send)


def bearer_problem(authorization: bytes | None, expected: str) -> tuple[int, str] | None:
    """(status, detail) refusing the Authorization header, or None when it carries the
    expected bearer token (constant-time comparison)."""
    if authorization is None:
        return 401, "missing bearer token"
    scheme, _, token = authorization.partition(b" ")
    if scheme.lower() != b"bearer" or not token.strip():
        return 401, "missing bearer token"
    if not hmac.compare_digest(token.strip(), expected.encode()):
        return 403, "invalid token"
    return None


class IngestAuthGate:
    """Refuse unauthenticated writes from their headers, before the body is read."""

    def __init__(self, app: ASGIApp, paths: Iterable[str], token: Callable[[], str]) -> None:
        self.app = app
        self.paths = frozenset(paths)
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] in self.paths:
            problem = bearer_problem(_header(scope, b"authorization"), self.token())
            if problem is not None:
                status, detail = problem
                headers = {"Connection": "close"}
                if status == 401:
                    headers["WWW-Authenticate"] = "Bearer"
                response = JSONResponse({"detail": detail}, status_code=status, headers=headers)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class MethodGuard:
    """405 with `Allow` for a method a served API path does not have (RFC 9110 15.5.6).

    `methods` maps each API path (none has path parameters) to its methods; computed
    lazily because routes are added after the middleware.
    """

    def __init__(self, app: ASGIApp, methods: Callable[[], dict[str, set[str]]]) -> None:
        self.app = app
        self._methods = methods
        self._table: dict[str, set[str]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if self._table is None:
                self._table = self._methods()
            allowed = self._table.get(scope["path"])
            if allowed is not None and scope["method"] not in allowed:
                allow = ", ".join(sorted(allowed))
                response = JSONResponse(
                    {"detail": "Method Not Allowed"}, status_code=405, headers={"Allow": allow}
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class TransportAbort:
    """Outermost: put the connection's `transport.abort` in a WebSocket scope's extensions.

    ASGI has no way to drop a connection whose send buffer never drains (uvicorn's close
    waits on it); uvicorn's `send` is a bound method of its protocol, whose transport can.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            transport = getattr(getattr(send, "__self__", None), "transport", None)
            abort = getattr(transport, "abort", None)
            if callable(abort):
                extensions = {**(scope.get("extensions") or {}), ABORT_EXTENSION: abort}
                scope = {**scope, "extensions": extensions}
        await self.app(scope, receive, send)
