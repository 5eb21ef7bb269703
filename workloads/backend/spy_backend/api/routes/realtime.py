"""GET /api/v1/negotiate: a client access URL for the realtime hub (Azure or local)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel

from spy_backend.api.deps import PublisherDep, SettingsDep

router = APIRouter(tags=["realtime"])


class Negotiated(BaseModel):
    url: str
    hub: str
    groups: list[str]


@router.get("/negotiate", response_model=Negotiated)
async def negotiate(request: Request, settings: SettingsDep, publisher: PublisherDep) -> Negotiated:
    """URL to open with subprotocol `json.webpubsub.azure.v1`; then `joinGroup` "SPY"."""
    groups = settings.realtime_groups
    url = await publisher.client_url(http_endpoint=str(request.base_url), groups=groups)
    return Negotiated(url=url, hub=settings.webpubsub_hub, groups=list(groups))
