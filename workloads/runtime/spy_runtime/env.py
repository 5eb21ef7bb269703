"""Typed reads of a workload's settings from environment variables.

``spy_detector.settings`` and ``spy_bot.settings`` each build an ``EnvReader`` over
``os.environ`` once at start-up, in ``Settings.from_env``. An empty or blank variable
means its default; a malformed one raises ``SettingsError`` naming the variable, so a
bad CR shows as a crash-looping pod with a clear log line.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


class SettingsError(ValueError):
    """A variable is missing or malformed."""


class EnvReader:
    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    def has(self, name: str) -> bool:
        return bool(self._env.get(name, "").strip())

    def text(self, name: str, default: str) -> str:
        return self._env.get(name, "").strip() or default

    def json(self, name: str) -> Any:
        """The variable's JSON value; {} when it is unset or blank."""
        raw = self._env.get(name, "").strip()
        try:
            return json.loads(raw) if raw else {}
        except json.JSONDecodeError as exc:
            raise SettingsError(f"{name} is not JSON: {exc}") from exc

    def integer(self, name: str, default: int) -> int:
        raw = self._env.get(name, "").strip()
        try:
            return int(raw) if raw else default
        except ValueError as exc:
            raise SettingsError(f"{name} must be an integer, got {raw!r}") from exc

    def number(self, name: str, default: float) -> float:
        raw = self._env.get(name, "").strip()
        try:
            return float(raw) if raw else default
        except ValueError as exc:
            raise SettingsError(f"{name} must be a number, got {raw!r}") from exc

    def flag(self, name: str, default: bool) -> bool:
        raw = self._env.get(name, "").strip().lower()
        if not raw:
            return default
        if raw in ("1", "true", "yes", "on"):
            return True
        if raw in ("0", "false", "no", "off"):
            return False
        raise SettingsError(f"{name} must be true or false, got {raw!r}")
