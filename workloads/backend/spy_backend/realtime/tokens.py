"""Client access tokens in Azure Web PubSub's format, for the local hub.

Azure signs client tokens with the hub's access key (HS256) and audience
`<endpoint>/client/hubs/<hub>`; roles in `role`, auto-joined groups in
`webpubsub.group`. The local hub issues and checks the same claims, so a client built
for Azure works unchanged against it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

JOIN_ANY = "webpubsub.joinLeaveGroup"
SEND_ANY = "webpubsub.sendToGroup"


def audience(http_endpoint: str, hub: str) -> str:
    return f"{http_endpoint.rstrip('/').lower()}/client/hubs/{hub}"


def join_roles(groups: list[str] | tuple[str, ...]) -> list[str]:
    """Roles letting a client join (and leave) exactly these groups."""
    return [f"{JOIN_ANY}.{g}" for g in groups]


def issue(
    key: str,
    http_endpoint: str,
    hub: str,
    *,
    roles: list[str],
    user_id: str | None = None,
    groups: list[str] | None = None,
    minutes: int = 60,
    now: datetime | None = None,
) -> str:
    now = now or datetime.now(UTC)
    payload: dict[str, object] = {
        "aud": audience(http_endpoint, hub),
        "iat": now,
        "exp": now + timedelta(minutes=minutes),
    }
    if user_id:
        payload["sub"] = user_id
    if roles:
        payload["role"] = roles
    if groups:
        payload["webpubsub.group"] = groups
    return jwt.encode(payload, key, algorithm="HS256")


@dataclass(frozen=True)
class ClientGrant:
    """What a verified token allows."""

    user_id: str | None
    roles: frozenset[str]
    groups: tuple[str, ...]

    def may_join(self, group: str) -> bool:
        return JOIN_ANY in self.roles or f"{JOIN_ANY}.{group}" in self.roles

    def may_send(self, group: str) -> bool:
        return SEND_ANY in self.roles or f"{SEND_ANY}.{group}" in self.roles


def verify(token: str, key: str, hub: str) -> ClientGrant:
    """Check signature, expiry and that the audience names this hub; jwt.InvalidTokenError."""
    claims = jwt.decode(
        token, key, algorithms=["HS256"], options={"verify_aud": False, "require": ["exp", "aud"]}
    )
    aud = claims["aud"]
    if not isinstance(aud, str) or not aud.lower().endswith(f"/client/hubs/{hub.lower()}"):
        raise jwt.InvalidAudienceError(f"token is not for hub {hub}")

    def as_list(value: object) -> list[str]:
        if isinstance(value, str):
            return [value]
        if isinstance(value, list):
            return [str(v) for v in value]
        return []

    sub = claims.get("sub")
    return ClientGrant(
        user_id=str(sub) if sub is not None else None,
        roles=frozenset(as_list(claims.get("role"))),
        groups=tuple(as_list(claims.get("webpubsub.group"))),
    )
