"""Redaction of secrets from every log line the backend process writes.

Installed on every logging handler by `__main__` (after uvicorn configured its own
loggers) and by `server.BackgroundServer`: uvicorn logs each WebSocket handshake with
its query string (`?access_token=eyJ...`) at INFO, and a library may put a bearer token
or a connection string in an exception message. The filter rewrites the formatted
message; it never drops a line.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

REDACTED = "<redacted>"
# Query parameters and headers that carry credentials, whatever their value looks like.
_PATTERNS = (
    (re.compile(r"(?i)\b(access_token|sig|signature|token)=[^&\s\"']+"), r"\1=" + REDACTED),
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]+"), r"\1 " + REDACTED),
    (
        re.compile(r"(?i)\b(accountkey|accesskey|sharedaccesssignature)=[^;\s\"']+"),
        r"\1=" + REDACTED,
    ),
    # A JWT anywhere (three base64url parts, the first one a JSON object's "{").
    (re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"), REDACTED),
)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with known secret values and credential-shaped substrings replaced."""
    for secret in sorted(set(secrets), key=len, reverse=True):
        if secret:
            text = text.replace(secret, REDACTED)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactingFilter(logging.Filter):
    """A handler filter: formats the record's message once, redacted, and keeps it."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets: set[str] = set(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            message = str(record.msg)  # a malformed %-format: still redact what is there
        record.msg, record.args = redact(message, self.secrets), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self.secrets)
        return True


def install(secrets: Iterable[str] = ()) -> RedactingFilter:
    """Add one shared filter (or the secrets to the one installed) on every handler of
    the root logger and of every logger that has handlers of its own (uvicorn's)."""
    loggers: list[logging.Logger] = [logging.getLogger()]
    for logger in list(logging.Logger.manager.loggerDict.values()):
        if isinstance(logger, logging.Logger) and logger.handlers:
            loggers.append(logger)
    shared: RedactingFilter | None = None
    for logger in loggers:
        for handler in logger.handlers:
            for existing in handler.filters:
                if isinstance(existing, RedactingFilter):
                    shared = existing
    shared = shared or RedactingFilter()
    shared.secrets.update(secrets)
    for logger in loggers:
        for handler in logger.handlers:
            if shared not in handler.filters:
                handler.addFilter(shared)
    return shared
