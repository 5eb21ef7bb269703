"""The fake API server's vocabulary: object keys, the kinds it serves, its errors, and
the records it keeps (requests, injected faults, admission requests, watch events).
Imported by every other module of this package; imports none of them.
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from spy_operator import constants as c

Body = dict[str, Any]
_T = TypeVar("_T")
ObjKey = tuple[str, str, str, str]  # (api prefix, plural, namespace, name)
Path = tuple[str, ...]  # FieldsV1 path: "f:spec", 'k:{"name":"bot"}', "."

KINDS = {
    "deployments": ("apps/v1", "Deployment"),
    "statefulsets": ("apps/v1", "StatefulSet"),
    "services": ("v1", "Service"),
    "secrets": ("v1", "Secret"),
    "pods": ("v1", "Pod"),
    "configmaps": ("v1", "ConfigMap"),
    "leases": ("coordination.k8s.io/v1", "Lease"),
    "serviceaccounts": ("v1", "ServiceAccount"),  # a bot's identity (bot_access.py)
    "roles": ("rbac.authorization.k8s.io/v1", "Role"),
    "rolebindings": ("rbac.authorization.k8s.io/v1", "RoleBinding"),
    **{plural: (c.API_VERSION, kind) for kind, plural in c.PLURAL.items()},
}
PLURAL_OF = {kind: plural for plural, (_, kind) in KINDS.items()}
# No status subresource:
NO_STATUS = {"secrets", "configmaps", "leases", "serviceaccounts", "roles", "rolebindings"}
USER_META = ("labels", "annotations", "ownerReferences", "finalizers")
REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    409: "Conflict",
    410: "Expired",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


class GoneError(Exception):
    """HTTP 410 Gone: the watch's resourceVersion is older than the compacted history (HTTP 410)."""


class RefusedError(Exception):
    def __init__(self, status: int, message: str, details: Body | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.details = status, message, details or {}


@dataclass
class Request:
    """One request as the server saw it, kept in `FakeApiServer.requests`."""

    verb: str
    path: str
    params: dict[str, str]
    content_type: str
    body: Any
    user: str
    time: float
    status: int = 0

    @property
    def is_write(self) -> bool:
        return self.verb != "GET"


@dataclass
class Fault:
    """An injected failure; see `FakeApiServer.fail`."""

    verb: str | None
    path: str
    status: int
    message: str
    times: int | None
    retry_after: int | None = None
    user: str | None = None
    when: Callable[[Request], bool] | None = None
    reply_lost: bool = False  # the write lands; the client sees a timeout
    hang: asyncio.Event | None = None  # answer only once this is set
    text: str | None = None  # a raw reply body instead of a Status (a proxy's HTML page)
    hits: int = 0

    def matches(self, req: Request) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        return (
            (self.verb is None or self.verb == req.verb)
            and fnmatch.fnmatchcase(req.path, self.path)
            and (self.user is None or self.user == req.user)
            and (self.when is None or self.when(req))
        )


@dataclass(frozen=True)
class AdmissionRequest:
    """What a ValidatingAdmissionPolicy sees: the object before and after the write."""

    verb: str
    plural: str
    subresource: str
    user: str
    old: Body | None
    new: Body


Admission = Callable[[AdmissionRequest], str | None]  # a refusal message, or None
# A mutating webhook: None (allowed as is), a refusal message, or RFC 6902 operations.
Mutation = Callable[[AdmissionRequest], str | list[Body] | None]


@dataclass
class WatchEvent:
    type: str  # ADDED, MODIFIED, DELETED
    plural: str
    object: Body
    resource_version: int


def clone(value: _T) -> _T:
    """A deep copy of JSON data (several times faster than copy.deepcopy)."""
    return cast(_T, json.loads(json.dumps(value)))
