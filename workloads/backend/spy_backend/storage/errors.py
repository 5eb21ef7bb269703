"""What a storage call can end in: stored, duplicate, refused (the record's fault) or
unavailable (the service's fault, retry), and the one wrapper that bounds a call in time
and sorts its exceptions into those.

Used by every module of the package that calls the service (`writes`, `reads`,
`tables`); the API maps `StorageUnavailableError` to 503 and `Rejection` to 422.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError

from spy_backend.models import PublicRecord


class StorageUnavailableError(Exception):
    """Storage could not be reached or failed server-side; the caller should retry.

    `stored` holds records that were durably created before the failure (so the caller
    can still broadcast them exactly once); `failed` the records of the call that may
    not be stored (a retry stores them or finds them duplicate).
    """

    def __init__(
        self,
        message: str,
        stored: list[PublicRecord] | None = None,
        failed: list[PublicRecord] | None = None,
    ) -> None:
        super().__init__(message)
        self.stored = stored or []
        self.failed = failed or []


@dataclass(frozen=True)
class Rejection:
    """A record the service refused (a 400 or 413 about its entity): retrying cannot help."""

    record: PublicRecord
    reason: str


@dataclass
class InsertOutcome:
    stored: list[PublicRecord] = field(default_factory=list)
    duplicate: int = 0
    rejected: list[Rejection] = field(default_factory=list)


def rejection_reason(exc: BaseException) -> str | None:
    """Why the service refused an entity it was sent, or None when `exc` is not that.

    Only 400 (EntityTooLarge, PropertyValueTooLarge, InvalidInput, ...) and 413
    (RequestBodyTooLarge) are about the data; other 4xx (403 bad key, 404 missing table)
    are deployment faults and must not be reported as the record's.
    """
    if not (isinstance(exc, HttpResponseError) and exc.status_code in (400, 413)):
        return None
    code = getattr(exc, "error_code", None)  # set by the SDK on some paths only
    if not code:
        code = (getattr(exc.response, "headers", None) or {}).get("x-ms-error-code")
    return f"storage refused the record ({getattr(code, 'value', code) or exc.status_code})"


def is_unavailable(exc: BaseException) -> bool:
    """An outage (transport error, timeout, 5xx, throttling): retrying later can help."""
    if isinstance(exc, ServiceRequestError | ServiceResponseError | TimeoutError | OSError):
        return True
    if isinstance(exc, HttpResponseError):
        return exc.status_code is None or exc.status_code >= 500 or exc.status_code == 429
    return False


@asynccontextmanager
async def storage_call(what: str, seconds: float) -> AsyncIterator[None]:
    """Bound a storage call in time and translate outages into StorageUnavailableError."""
    try:
        async with asyncio.timeout(seconds):
            yield
    except BaseException as exc:
        # Only outages are retryable; anything else (a 4xx we did not expect) is a bug
        # and propagates with its traceback.
        if is_unavailable(exc):
            raise StorageUnavailableError(f"{what}: {type(exc).__name__}") from exc
        raise
