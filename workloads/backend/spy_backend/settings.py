"""The one validated configuration of the backend.

Read from environment variables prefixed `SPY_BACKEND_` (and an optional env file).
Outside `environment=development` it refuses the well-known development secrets, so a
production deployment can not start with the default ingest token or the Azurite key.
Called by `app.create_app`, `__main__` and `devserver`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_INGEST_TOKEN = "dev-ingest-token-change-me"
DEV_AUDIT_TOKEN = "dev-audit-token-change-me"
DEV_HUB_KEY = "dev-local-hub-key-change-me-0123456789"
# Azurite's published development account key (not a secret, but never for production).
AZURITE_ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


def azurite_connection_string(port: int, host: str = "127.0.0.1") -> str:
    """Connection string for an Azurite table service listening on host:port."""
    return (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
        f"AccountKey={AZURITE_ACCOUNT_KEY};"
        f"TableEndpoint=http://{host}:{port}/devstoreaccount1;"
    )


class Settings(BaseSettings):
    """Backend configuration; every field is an env var `SPY_BACKEND_<NAME>`."""

    # hide_input_in_errors: a refused value (a key, a connection string) must never be
    # echoed in the validation error printed at startup.
    model_config = SettingsConfigDict(
        env_prefix="SPY_BACKEND_",
        env_file=None,
        extra="ignore",
        frozen=True,
        hide_input_in_errors=True,
    )

    environment: Literal["development", "test", "production"] = "development"
    ingest_token: SecretStr = Field(
        default=SecretStr(DEV_INGEST_TOKEN), description="Bearer token the detector sends."
    )
    audit_token: SecretStr | None = Field(
        default=None,
        description="Bearer token of the bots' audit API (POST and GET /api/v1/audit); "
        "unset: the development token in development, else the audit API refuses all.",
    )
    storage_connection_string: SecretStr = Field(
        default=SecretStr(azurite_connection_string(10002)),
        description="Azure Table Storage connection string (Azurite in development).",
    )
    table_prefix: str = Field(
        default="spy", pattern=r"^[A-Za-z][A-Za-z0-9]{0,39}$", description="Table name prefix."
    )
    storage_timeout_seconds: float = Field(default=3.0, gt=0, le=60)
    retention_days: int = Field(default=30, ge=1, le=3650)
    purge_interval_seconds: float = Field(default=3600.0, gt=0, le=86400)
    max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024, le=256 * 1024 * 1024)
    cors_origins: tuple[str, ...] = Field(default=(), description="Origins allowed to GET.")
    realtime: Literal["local", "azure"] = "local"
    webpubsub_connection_string: SecretStr | None = Field(
        default=None, description="Azure Web PubSub connection string (realtime=azure)."
    )
    webpubsub_hub: str = Field(default="spy", pattern=r"^[A-Za-z][A-Za-z0-9_]{0,127}$")
    local_hub_key: SecretStr = Field(
        default=SecretStr(DEV_HUB_KEY), description="HS256 key of the local hub's tokens."
    )
    client_token_minutes: int = Field(default=60, ge=1, le=1440)
    realtime_groups: tuple[str, ...] = Field(
        default=("SPY",), description="Groups a negotiated client may join."
    )
    dashboard_dir: Path | None = Field(
        default=None, description="Static files served at / (the dashboard), if set."
    )
    public_url: str | None = Field(
        default=None,
        pattern=r"^https?://[A-Za-z0-9.\-\[\]:]+(:[0-9]{1,5})?/?$",
        description="Public http(s) origin of this backend, used in negotiated hub URLs; "
        "unset: only loopback Host headers are trusted (development).",
    )
    hub_origins: tuple[str, ...] = Field(
        default=(),
        description="Browser origins allowed to open the local hub besides this backend's "
        "own origin and cors_origins.",
    )
    hub_client_buffer_bytes: int = Field(
        default=32 * 1024 * 1024,
        ge=64 * 1024,
        le=1024 * 1024 * 1024,
        description="Bytes a slow hub client may lag behind before it is disconnected; "
        "above max_body_bytes, so one batch's broadcast never drops a healthy client.",
    )
    hub_send_timeout_seconds: float = Field(
        default=10.0, gt=0, le=300, description="A hub send stalled this long aborts the client."
    )
    query_rate_per_second: float = Field(
        default=20.0, ge=0, le=100_000, description="Public GETs per second per token/IP; 0: off."
    )
    query_burst: int = Field(
        default=120, ge=1, le=1_000_000, description="Public GETs a client may make at once."
    )

    @model_validator(mode="after")
    def _refuse_unsafe_defaults(self) -> Settings:
        if self.realtime == "azure" and self.webpubsub_connection_string is None:
            raise ValueError("realtime=azure needs webpubsub_connection_string")
        if self.environment == "development":
            return self
        unsafe: list[str] = []
        token = self.ingest_token.get_secret_value()
        if token == DEV_INGEST_TOKEN or len(token) < 24:
            unsafe.append("ingest_token (default or shorter than 24 characters)")
        audit = self.audit_token.get_secret_value() if self.audit_token is not None else None
        if audit is not None and (audit == DEV_AUDIT_TOKEN or len(audit) < 24):
            unsafe.append("audit_token (default or shorter than 24 characters)")
        if self.realtime == "local" and self.local_hub_key.get_secret_value() == DEV_HUB_KEY:
            unsafe.append("local_hub_key (default)")
        if (
            self.realtime == "local"
            and self.public_url is None
            and (self.environment == "production")
        ):
            unsafe.append("public_url (unset: negotiate would trust only loopback hosts)")
        if AZURITE_ACCOUNT_KEY in self.storage_connection_string.get_secret_value() and (
            self.environment == "production"
        ):
            unsafe.append("storage_connection_string (Azurite development key)")
        if unsafe:
            raise ValueError(
                f"unsafe settings for environment={self.environment}: " + ", ".join(unsafe)
            )
        return self

    def audit_secret(self) -> str | None:
        """The audit API's token; None: not configured, every audit request is refused."""
        if self.audit_token is not None:
            return self.audit_token.get_secret_value()
        return DEV_AUDIT_TOKEN if self.environment == "development" else None


def quiet_libraries() -> None:
    """The Azure SDK logs every request at INFO; keep our own logs readable."""
    import logging

    for name in ("azure", "httpx", "uvicorn.access"):
        logging.getLogger(name).setLevel(logging.WARNING)


def secret_values(settings: Settings) -> list[str]:
    """Every secret of the settings (and the account key inside a connection string), for
    the log redaction filter (`logredact`)."""
    values = [settings.ingest_token.get_secret_value(), settings.local_hub_key.get_secret_value()]
    values.append(settings.audit_secret() or "")
    for conn in (settings.storage_connection_string, settings.webpubsub_connection_string):
        if conn is None:
            continue
        text = conn.get_secret_value()
        values.append(text)
        for part in text.split(";"):
            name, _, value = part.partition("=")
            if name.strip().lower() in ("accountkey", "accesskey", "sharedaccesssignature"):
                values.append(value.strip())
    return [v for v in values if len(v) >= 8]
