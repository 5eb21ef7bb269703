"""The runtime images (`make images`, buildah, no Docker daemon): hadolint-clean
Dockerfiles, and each built image run with `buildah run --isolation chroot` (podman
cannot run here): its entry point's --help, non-root, no dev tooling, no pip, and the
backend's /healthz and dashboard served from inside the image.

`make test` builds the images first (TEST_DEPS += images; cached, a few seconds when
nothing changed).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import tomllib
from collections.abc import Iterator

import httpx
import pytest
from delivery_support import run, tool
from k8s_support import wait_for
from spy_dev.devcluster import REPO_ROOT, free_port

VERSION = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["version"]
DOCKERFILES = [
    "operator/Dockerfile",
    "workloads/detector/Dockerfile",
    "workloads/backend/Dockerfile",
    "workloads/bot/Dockerfile",
]
IMAGES = {
    # name: (module, the package dirs /app must hold, exactly)
    "operator": ("spy_operator", {"spy_operator"}),
    "detector": ("spy_detector", {"spy_analytics", "spy_runtime", "spy_detector"}),
    "backend": ("spy_backend", {"spy_analytics", "spy_backend", "dashboard"}),
    "bot": ("spy_bot", {"spy_runtime", "spy_bot"}),
}
ENV = {**os.environ, "STORAGE_DRIVER": "vfs", "BUILDAH_ISOLATION": "chroot"}
# Compressed OCI archive budgets (MB), about 1.4x the sizes docs/install.md reports: a
# dependency that drags in a toolchain or a second copy of numpy fails here.
ARCHIVE_BUDGET_MB = {"operator": 80, "detector": 155, "backend": 170, "bot": 150}


def buildah(
    *args: str, check: bool = True, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return run(tool("buildah"), *args, check=check, timeout=timeout, env=ENV)


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_dockerfile_is_hadolint_clean(dockerfile: str) -> None:
    proc = run(tool("hadolint"), str(REPO_ROOT / dockerfile), check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.fixture(scope="module", params=sorted(IMAGES))
def container(request: pytest.FixtureRequest) -> Iterator[tuple[str, str, dict[str, object]]]:
    name = request.param
    image = f"localhost/spy-{name}:{VERSION}"
    if buildah("inspect", "--type", "image", image, check=False).returncode != 0:
        pytest.fail(f"{image} is not built: run `make images` (make test does)")
    config = json.loads(buildah("inspect", "--type", "image", image).stdout)
    ctr = buildah("from", "--quiet", "--pull-never", image).stdout.strip()
    try:
        yield name, ctr, config
    finally:
        buildah("rm", ctr, check=False)


def in_image(ctr: str, *argv: str) -> subprocess.CompletedProcess[str]:
    return buildah("run", "--isolation", "chroot", ctr, "--", *argv, check=False)


def test_entry_point_help_runs(container: tuple[str, str, dict[str, object]]) -> None:
    name, ctr, config = container
    module = IMAGES[name][0]
    docker = config["Docker"]["config"]  # type: ignore[index]
    assert docker["Entrypoint"] == ["python3", "-m", module]
    proc = in_image(ctr, *docker["Entrypoint"], "--help")
    assert proc.returncode == 0, proc.stderr
    assert f"python -m {module}" in proc.stdout or "usage:" in proc.stdout


def test_every_module_of_the_image_imports(container: tuple[str, str, dict[str, object]]) -> None:
    """Catches a dependency the image lacks (lazy imports aside: the backend test below)."""
    name, ctr, _ = container
    packages = [p for p in IMAGES[name][1] if p.startswith("spy_")]
    probe = (
        "import importlib, pkgutil\n"
        f"for top in {packages!r}:\n"
        "    pkg = importlib.import_module(top)\n"
        "    for m in pkgutil.walk_packages(pkg.__path__, top + '.'):\n"
        "        if not m.name.endswith('__main__'):\n"
        "            importlib.import_module(m.name)\n"
        "print('ok')\n"
    )
    proc = in_image(ctr, "python3", "-c", probe)
    assert proc.stdout.strip() == "ok", proc.stderr[-3000:]


def test_image_is_non_root_with_only_runtime_packages(
    container: tuple[str, str, dict[str, object]],
) -> None:
    name, ctr, config = container
    docker = config["Docker"]["config"]  # type: ignore[index]
    assert docker["User"] == "1000:1000"
    assert in_image(ctr, "id", "-u").stdout.strip() == "1000"
    listing = in_image(ctr, "ls", "/app").stdout.split()
    assert set(listing) == IMAGES[name][1]
    probe = (
        "import importlib.util as u; "
        "print([m for m in ('spy_dev', 'tests', 'pytest', 'pip') if u.find_spec(m)])"
    )
    assert in_image(ctr, "python3", "-c", probe).stdout.strip() == "[]"
    assert in_image(ctr, "sh", "-c", "command -v gcc cc make apt-get pip pip3").stdout.strip() in (
        "",
        "/usr/bin/apt-get",  # debootstrap's minbase keeps apt; there is nothing to compile with
    )
    labels = docker.get("Labels") or {}
    assert labels.get("org.opencontainers.image.version") == VERSION


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_image_archive_is_within_its_size_budget(name: str) -> None:
    archive = REPO_ROOT / ".local" / "images" / f"spy-{name}-{VERSION}.oci.tar"
    if not archive.exists():
        pytest.fail(f"{archive} is missing: run `make images` (make test does)")
    size_mb = archive.stat().st_size / 1e6
    assert size_mb <= ARCHIVE_BUDGET_MB[name], f"spy-{name}: {size_mb:.0f} MB archive"


def test_backend_serves_healthz_and_dashboard_from_the_image() -> None:
    image = f"localhost/spy-backend:{VERSION}"
    config = json.loads(buildah("inspect", "--type", "image", image).stdout)
    assert config["Docker"]["config"]["Healthcheck"]["Test"][0] == "CMD"
    ctr = buildah("from", "--quiet", "--pull-never", image).stdout.strip()
    port = free_port()
    # chroot isolation shares the host's network: the server listens on host loopback.
    proc = subprocess.Popen(
        [
            tool("buildah"),
            "run",
            "--isolation",
            "chroot",
            "--env",
            "SPY_BACKEND_ENVIRONMENT=development",
            ctr,
            "--",
            "python3",
            "-m",
            "spy_backend",
            "--host=127.0.0.1",
            f"--port={port}",
        ],
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: buildah and the server in it
    )
    try:

        def healthz() -> httpx.Response | None:
            with contextlib.suppress(httpx.TransportError):
                r = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                return r if r.status_code == 200 else None
            return None

        assert wait_for("backend /healthz in the image", healthz, timeout=180, interval=0.5)
        page = httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
        assert page.status_code == 200 and "<canvas" in page.text
    finally:
        # The server is a child of buildah run: end the group this test started.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        buildah("rm", ctr, check=False)
