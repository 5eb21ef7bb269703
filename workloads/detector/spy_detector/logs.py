"""One-line JSON logs (fixed message + structured fields) for the detector process:
spy_runtime.logs, shared with the bot."""

from spy_runtime.logs import JsonFormatter, setup

__all__ = ["JsonFormatter", "setup"]
