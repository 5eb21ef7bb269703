"""The full schemathesis run (issue 12, finding 6): every check, for `--seconds` (180),
against the backend as `make demo` starts it (Azurite, local hub, dashboard at `/`).

`make test` runs a bounded subset (tests/backend/test_openapi_fuzz.py); this is the long
one. The schemathesis CLI runs in a child process with the project's hooks for the
three cross-field rules JSON Schema can not state (tests/backend/fuzz_hooks.py). The
backend's rate limit is off: a fuzzer is one client sending thousands of queries.

    .venv/bin/python bench/schemathesis_full.py [--seconds 180]

The last line printed is one JSON object: cases, failures by check, the verdict.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

from spy_dev.devserver import start_dev_stack

REPO = Path(__file__).resolve().parents[1]
TOKEN = "schemathesis-ingest-token-0123456789"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=180)
    # One worker: with two, CPython 3.11 ast.parse (hypothesis describing a lambda) can
    # fail with "AST constructor recursion depth mismatch" in the coverage phase.
    parser.add_argument("--workers", default="1")
    args = parser.parse_args()
    stack = start_dev_stack(port=0, ingest_token=TOKEN, query_rate_per_second=0)
    out = Path(tempfile.mkdtemp(prefix="schemathesis-"))
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "tests.backend.fuzz_hooks",
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    cmd = [
        str(Path(sys.executable).with_name("schemathesis")),
        "run",
        f"{stack.url}/openapi.json",
        "--checks",
        "all",
        "--max-time",
        str(args.seconds),
        "--workers",
        args.workers,
        "--header",
        f"Authorization: Bearer {TOKEN}",
        "--report",
        "junit",
        "--report-junit-path",
        str(out / "junit.xml"),
        "--no-color",
    ]
    started = time.monotonic()
    try:
        run = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, check=False)
    finally:
        stack.stop()
    elapsed = time.monotonic() - started
    output = run.stdout + run.stderr
    (out / "output.txt").write_text(output)
    tail = [line for line in output.splitlines() if line.strip()][-25:]
    print("\n".join(tail), flush=True)
    result = junit_counts(out / "junit.xml")
    print(
        json.dumps(
            {
                "bench": "schemathesis_full",
                "load_avg_1m": round(os.getloadavg()[0], 2),
                "versions": {p: version(p) for p in ("schemathesis", "hypothesis", "fastapi")},
                "seconds": round(elapsed),
                "exit_code": run.returncode,
                "passed": run.returncode == 0,
                **result,
                "log": str(out / "output.txt"),
            }
        )
    )


def junit_counts(path: Path) -> dict[str, Any]:
    """Test cases (one per operation and phase) and failures from the JUnit report."""
    import xml.etree.ElementTree as ET

    if not path.exists():
        return {"operations": None, "failures": None}
    root = ET.parse(path).getroot()
    cases = root.iter("testcase")
    failed: list[str] = []
    total = 0
    for case in cases:
        total += 1
        if case.find("failure") is not None or case.find("error") is not None:
            failed.append(case.get("name", "?"))
    return {"operations": total, "failed_operations": failed}


if __name__ == "__main__":
    main()
