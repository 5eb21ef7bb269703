"""terraform/ through the real tools, offline: `tofu fmt -check`, tflint, checkov, and
`tofu init -backend=false` + `tofu validate` against the azurerm provider built from Go
modules into a -plugin-dir mirror (tools/build-azure.sh; `make azure-tools`, which
`make test` runs). Validate is the ceiling here: plan needs Azure credentials.

Each tool runs on a copy of terraform/ in a temporary directory, so no .terraform/ or
lock file (which would hold the local build's hash) ever lands in the tree.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from azure_support import REPO, TERRAFORM

BIN = REPO / ".bin"
TOFU = BIN / "tofu"
TFLINT = BIN / "tflint"
CHECKOV = BIN / "checkov-venv" / "bin" / "checkov"
PLUGINS = BIN / "tofu-plugins"

pytestmark = pytest.mark.slow


def need(tool: Path) -> str:
    if not tool.exists():
        pytest.fail(f"{tool.relative_to(REPO)} is missing: run `make azure-tools` (make test does)")
    return str(tool)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    dest = tmp_path / "terraform"
    shutil.copytree(TERRAFORM, dest, ignore=shutil.ignore_patterns(".terraform*", "*.tfstate*"))
    return dest


def env(tmp_path: Path) -> dict[str, str]:
    cli = tmp_path / "tofurc"
    cli.write_text("")  # no user CLI config: no registry mirrors, no credentials
    return {
        **os.environ,
        "TF_CLI_CONFIG_FILE": str(cli),
        "CHECKPOINT_DISABLE": "1",
        "TF_IN_AUTOMATION": "1",
        "TF_PLUGIN_CACHE_DIR": "",
    }


def run(cmd: list[str], cwd: Path, environ: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cmd, cwd=cwd, env=environ, capture_output=True, text=True, check=False, timeout=600
    )


def test_tofu_fmt_check(tmp_path: Path) -> None:
    done = run(
        [need(TOFU), "fmt", "-check", "-diff", "-recursive", str(TERRAFORM)], REPO, env(tmp_path)
    )
    assert done.returncode == 0, f"tofu fmt would change:\n{done.stdout}{done.stderr}"


def test_tflint_is_clean(workdir: Path, tmp_path: Path) -> None:
    environ = {**env(tmp_path), "TFLINT_PLUGIN_DIR": str(tmp_path / "tflint-plugins")}
    done = run([need(TFLINT), "--config", str(workdir / ".tflint.hcl")], workdir, environ)
    assert done.returncode == 0, f"tflint:\n{done.stdout}{done.stderr}"


def test_checkov_is_clean_or_each_skip_justified(workdir: Path, tmp_path: Path) -> None:
    report = tmp_path / "checkov"
    done = run(
        [
            need(CHECKOV),
            "--directory",
            str(workdir),
            "--framework",
            "terraform",
            "--skip-download",  # offline: no Bridgecrew/Prisma policy download
            "--quiet",
            "--compact",
            "--output",
            "cli",
            "--output",
            "json",
            "--output-file-path",
            f"console,{report}",
        ],
        workdir,
        {**env(tmp_path), "BC_SKIP_MAPPING": "TRUE", "CKV_NO_NETWORK": "1"},
    )
    assert done.returncode == 0, (
        f"checkov failed checks:\n{done.stdout[-8000:]}{done.stderr[-2000:]}"
    )
    summary = json.loads(report.read_text())["summary"]  # one framework: one object
    assert summary["failed"] == 0 and summary["passed"] > 40, summary


def test_tofu_validate_against_the_built_azurerm_provider(workdir: Path, tmp_path: Path) -> None:
    need(TOFU)
    if not any(
        PLUGINS.glob("registry.opentofu.org/hashicorp/azurerm/*/linux_amd64/terraform-provider-*")
    ):
        pytest.fail(f"no azurerm provider under {PLUGINS}: run `make azure-tools` (make test does)")
    environ = {**env(tmp_path), "TF_DATA_DIR": str(tmp_path / "tfdata")}
    init = run(
        [str(TOFU), "init", "-backend=false", "-input=false", f"-plugin-dir={PLUGINS}"],
        workdir,
        environ,
    )
    assert init.returncode == 0, f"tofu init:\n{init.stdout}{init.stderr}"
    done = run([str(TOFU), "validate", "-json"], workdir, environ)
    result = json.loads(done.stdout)
    problems = [
        f"{d['severity']}: {d['summary']}: {d.get('detail', '')}" for d in result["diagnostics"]
    ]
    assert result["valid"] is True, "\n".join(problems)
    # Deprecated arguments show up as warnings: the code must have none, so it also
    # validates on the next major version.
    assert not problems, "\n".join(problems)
