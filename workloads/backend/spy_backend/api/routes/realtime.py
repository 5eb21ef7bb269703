"""GET /api/v1/negotiate: a client access URL for the realtime hub (Azure or local).

The answer carries an access token: never cached (`Cache-Control: no-store`), and its
URL is built from the configured `public_url`, never from a Host header an outsider
chose (only a loopback Host is trusted, for development and local proxies).
"""

from __future__ import annotations

import ipaddress

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from spy_backend.api.deps import PublisherDep, QueryRateLimit, SettingsDep
from spy_backend.models import Problem
from spy_backend.settings import Settings

router = APIRouter(tags=["realtime"])


class Negotiated(BaseModel):
    url: str
    hub: str
    groups: list[str]


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def public_endpoint(settings: Settings, request: Request) -> str:
    """Where clients reach this backend: the configured public URL; else the request's
    own URL when its Host is loopback; else the address the server listens on."""
    if settings.public_url:
        return settings.public_url.rstrip("/") + "/"
    if is_loopback(request.url.hostname):
        return str(request.base_url)
    server = request.scope.get("server")
    if server is not None:
        host, port = server[0], server[1]
        host = f"[{host}]" if ":" in str(host) else host
        return f"{request.url.scheme}://{host}:{port}/"
    return "http://127.0.0.1/"


@router.get(
    "/negotiate",
    response_model=Negotiated,
    dependencies=[QueryRateLimit],
    responses={429: {"model": Problem, "description": "Too many requests; see Retry-After."}},
)
async def negotiate(
    request: Request, response: Response, settings: SettingsDep, publisher: PublisherDep
) -> Negotiated:
    """URL to open with subprotocol `json.webpubsub.azure.v1`; then `joinGroup` "SPY"."""
    groups = settings.realtime_groups
    url = await publisher.client_url(
        http_endpoint=public_endpoint(settings, request), groups=groups
    )
    response.headers["Cache-Control"] = "no-store"
    return Negotiated(url=url, hub=settings.webpubsub_hub, groups=list(groups))
