"""Machine state printed beside every analytics benchmark figure.

Who calls this: bench/iv_throughput.py, bench/pipeline.py, bench/detection_quality.py
put ``machine_state()`` into their JSON line, so a number is never read without the
load average, CPU and numpy/BLAS build it was measured on (the development machines
are shared 2-core boxes; their numbers are noisy).
"""

from __future__ import annotations

import os
import platform
from typing import Any

import numpy as np


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def blas() -> str:
    try:
        deps = np.show_config(mode="dicts")["Build Dependencies"]  # type: ignore[func-returns-value]
        b = deps.get("blas", {})
        return f"{b.get('name', '?')} {b.get('version', '')}".strip()
    except (TypeError, KeyError, AttributeError):
        return "unknown"


def machine_state() -> dict[str, Any]:
    load = os.getloadavg() if hasattr(os, "getloadavg") else (None, None, None)
    return {
        "load_average": [round(x, 2) if x is not None else None for x in load],
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "blas": blas(),
        "threads": {v: os.environ.get(v) for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")},
    }


def describe(state: dict[str, Any]) -> str:
    la = state["load_average"]
    return (
        f"load {la[0]}/{la[1]}/{la[2]} on {state['cpus']} x {state['cpu_model']}; "
        f"numpy {state['numpy']} ({state['blas']})"
    )
