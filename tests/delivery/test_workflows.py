"""GitHub workflows and shell scripts: actionlint (with shellcheck on every `run:`
block) over every file in .github/workflows/, whoever wrote it, and shellcheck over
the build scripts in tools/."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from delivery_support import run, tool
from spy_dev.devcluster import REPO_ROOT

WORKFLOWS = sorted((REPO_ROOT / ".github" / "workflows").glob("*.y*ml"))
# The delivery scripts (tools/build.sh belongs to the control plane's owner).
SCRIPTS = [
    REPO_ROOT / "tools" / "build-delivery.sh",
    REPO_ROOT / "tools" / "build-images.sh",
    REPO_ROOT / "tools" / "images" / "base.sh",
]


def actionlint(*paths: Path) -> tuple[int, str]:
    proc = run(
        tool("actionlint"),
        "-shellcheck",
        tool("shellcheck"),
        "-no-color",
        *map(str, paths),
        check=False,
    )
    return proc.returncode, proc.stdout + proc.stderr


def test_the_workflows_exist() -> None:
    names = {p.stem for p in WORKFLOWS}
    assert {"test", "images", "chart", "deploy"} <= names


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=[p.name for p in WORKFLOWS])
def test_workflow_is_actionlint_and_shellcheck_clean(workflow: Path) -> None:
    code, out = actionlint(workflow)
    assert code == 0, out


def test_actionlint_runs_shellcheck_on_run_blocks(tmp_path: Path) -> None:
    """A quoting bug in a run: block is caught, so shellcheck really runs."""
    bad = tmp_path / ".github" / "workflows" / "bad.yml"
    bad.parent.mkdir(parents=True)
    bad.write_text(
        yaml.safe_dump(
            {
                "on": "push",
                "jobs": {"j": {"runs-on": "ubuntu-24.04", "steps": [{"run": "rm -rf $DIR/*"}]}},
            }
        )
    )
    code, out = actionlint(bad)
    assert code != 0 and "shellcheck" in out


def test_workflows_use_oidc_not_stored_cloud_secrets() -> None:
    for path in WORKFLOWS:
        text = path.read_text()
        if "azure/login" in text:
            doc = yaml.safe_load(text)
            assert doc["permissions"]["id-token"] == "write", path.name
            assert "client-secret" not in text and "creds:" not in text, path.name


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.name for p in SCRIPTS])
def test_build_script_is_shellcheck_clean(script: Path) -> None:
    proc = run(tool("shellcheck"), "-x", str(script), check=False)
    assert proc.returncode == 0, proc.stdout
