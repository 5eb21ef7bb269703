"""`python -m spy_backend`: serve the backend API with uvicorn.

Settings come from `SPY_BACKEND_*` environment variables (see `--help`) and an optional
env file; outside environment=development unsafe defaults are refused at start.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import uvicorn
from pydantic import SecretStr, ValidationError

from spy_backend import logredact
from spy_backend.app import create_app
from spy_backend.server import HUB_MAX_FRAME_BYTES
from spy_backend.settings import Settings, quiet_libraries, secret_values


def _settings_help() -> str:
    lines = ["settings (environment variables):"]
    for name, info in Settings.model_fields.items():
        default = "<secret>" if isinstance(info.default, SecretStr) else info.default
        lines.append(f"  SPY_BACKEND_{name.upper():32s} default: {default}")
    return "\n".join(lines)


def openapi_json() -> str:
    """The served OpenAPI document, as committed in docs/openapi.json."""
    spec = create_app(Settings(), run_purge=False).openapi()
    return json.dumps(spec, indent=2, sort_keys=True) + "\n"


def validation_report(exc: ValidationError) -> str:
    """Each refused setting by name and reason; never the value given (it may be a key)."""
    lines = []
    for error in exc.errors(include_input=False, include_url=False, include_context=False):
        where = ".".join(str(part) for part in error["loc"]) or "settings"
        env = f" (SPY_BACKEND_{where.upper()})" if error["loc"] else ""
        lines.append(f"  {where}{env}: {error['msg']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m spy_backend",
        description="SPY options backend: ingest, query, realtime (FastAPI).",
        epilog=_settings_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="listen port (default 8000)")
    parser.add_argument("--env-file", type=Path, help="read SPY_BACKEND_* settings from this file")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])
    parser.add_argument(
        "--openapi", type=Path, metavar="FILE", help="write the OpenAPI spec to FILE and exit"
    )
    args = parser.parse_args(argv)
    if args.openapi:
        args.openapi.write_text(openapi_json())
        return 0
    logging.basicConfig(level=args.log_level.upper())
    quiet_libraries()
    logredact.install()
    try:
        settings = Settings(_env_file=args.env_file) if args.env_file else Settings()  # type: ignore[call-arg]
    except ValidationError as exc:
        print(f"invalid settings:\n{validation_report(exc)}", file=sys.stderr)
        return 2
    config = uvicorn.Config(
        create_app(settings),
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        ws_max_size=HUB_MAX_FRAME_BYTES,
    )
    server = uvicorn.Server(config)  # Config configured uvicorn's loggers: redact them all
    logredact.install(secret_values(settings))
    server.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
