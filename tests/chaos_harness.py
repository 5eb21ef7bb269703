"""What the chaos suite is given and what one run reports: the `Harness` (the admin
kubeconfig, the operator process, optionally its identity and the control plane), the
`Settings` of a suite, and a `RunResult`. Used by chaos_steps.py and chaos_runner.py,
and through chaos_runner by bench/chaos.py and tests/operator/test_chaos_cluster.py.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from chaos_plan import Kind
from chaos_plane import ComponentControl
from gate_invariant import Violation


class OperatorControl(Protocol):
    """The operator process (operator_support.OperatorProcess fits)."""

    def start(self) -> None: ...
    def kill(self) -> None: ...
    def stop(self) -> None: ...
    def alive(self) -> bool: ...


def _stderr(msg: str) -> None:
    print(f"[chaos] {msg}", file=sys.stderr, flush=True)


@dataclass
class Harness:
    kubeconfig: Path  # the admin user's
    operator: OperatorControl
    operator_user: str | None = None  # its identity; None: no admission refusals
    operator_kubeconfig: Path | None = None
    plane: ComponentControl | None = None  # None: no kube-apiserver chaos
    log: Callable[[str], None] = _stderr


@dataclass(frozen=True)
class Settings:
    runs: int = 100
    seed: int = 1
    steps: int = 4
    pace: float = 1.0  # scales every chaos pause
    revert_window: float = 2.0
    restart_window: float = 5.0
    max_seconds: float = 5400.0  # no new run starts after this
    baseline_seconds: float = 30.0
    settle_seconds: float = 20.0
    kinds: frozenset[Kind] | None = None  # None: every kind the harness can do


@dataclass
class RunResult:
    index: int
    namespace: str
    steps: list[str]
    seconds: float = 0.0
    violations: list[Violation] = field(default_factory=list)
    baseline_reached: bool = False
    settled: bool = False
    errors: list[str] = field(default_factory=list)
