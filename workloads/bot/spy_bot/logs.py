"""One-line JSON logs (fixed message + structured fields) for the bot process:
spy_runtime.logs, shared with the detector."""

from spy_runtime.logs import JsonFormatter, setup

__all__ = ["JsonFormatter", "setup"]
