"""A protocol-level stand-in for the Azure Web PubSub service's REST API.

Not a mock of the SDK: the real azure-messaging-webpubsubservice client sends real HTTP
requests here. The stand-in checks what the service checks — the REST path
`/api/hubs/<hub>/groups/<group>/:send` with an `api-version`, a bearer JWT signed
(HS256) with the access key whose audience is the request URL, a JSON body — records
accepted sends, and answers 202 (or 401 like the service on a bad token).
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt

SEND_PATH = re.compile(r"^/api/hubs/(?P<hub>[A-Za-z][A-Za-z0-9_]*)/groups/(?P<group>[^/]+)/:send$")


@dataclass
class Sent:
    hub: str
    group: str
    api_version: str
    content_type: str
    body: Any


@dataclass
class WebPubSubStandIn:
    key: str = "c3RhbmQtaW4tYWNjZXNzLWtleS0wMTIzNDU2Nzg5YWJjZGVm"
    sent: list[Sent] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _cond: threading.Condition = field(default_factory=threading.Condition)

    @property
    def endpoint(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def connection_string(self) -> str:
        return f"Endpoint={self.endpoint};AccessKey={self.key};Version=1.0;"

    def start(self) -> WebPubSubStandIn:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet test output

            def do_POST(self) -> None:
                problem = standin._check(self)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if problem is None:
                    standin._record(self, body)
                    self.send_response(202)
                else:
                    with standin._cond:
                        standin.rejected.append(problem)
                        standin._cond.notify_all()
                    self.send_response(401 if "token" in problem else 400)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def _check(self, req: BaseHTTPRequestHandler) -> str | None:
        url = urlsplit(req.path)
        if not SEND_PATH.match(url.path):
            return f"unexpected path {url.path}"
        if not parse_qs(url.query).get("api-version"):
            return "missing api-version"
        auth = req.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            return "missing bearer token"
        try:
            jwt.decode(auth[7:], self.key, algorithms=["HS256"], audience=self.endpoint + req.path)
        except jwt.InvalidTokenError as exc:
            return f"bad token: {exc}"
        if req.headers.get("Content-Type", "").split(";")[0] != "application/json":
            return "body is not application/json"
        return None

    def _record(self, req: BaseHTTPRequestHandler, body: bytes) -> None:
        url = urlsplit(req.path)
        match = SEND_PATH.match(url.path)
        assert match is not None
        sent = Sent(
            hub=match["hub"],
            group=match["group"],
            api_version=parse_qs(url.query)["api-version"][0],
            content_type=req.headers["Content-Type"],
            body=json.loads(body),
        )
        with self._cond:
            self.sent.append(sent)
            self._cond.notify_all()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Sent]:
        """Block until `count` sends were accepted (or rejections explain why not)."""
        with self._cond:
            ok = self._cond.wait_for(lambda: len(self.sent) >= count or self.rejected, timeout)
            assert ok and not self.rejected, (self.rejected, len(self.sent))
            return list(self.sent)

    def wait_for_rejection(self, timeout: float = 10.0) -> str:
        with self._cond:
            assert self._cond.wait_for(lambda: self.rejected, timeout)
            return self.rejected[0]
