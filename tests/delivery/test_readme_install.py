"""README's third path ("Install on your own cluster"), run verbatim against the local
control plane: every line of its ```sh block, with kubectl and helm from .bin/ on PATH
and KUBECONFIG pointing at the session's cluster."""

from __future__ import annotations

import os
import re

from delivery_support import run, tool
from k8s_support import Cluster
from spy_dev.devcluster import DEFAULT_BIN, REPO_ROOT


def readme_install_commands() -> list[str]:
    text = (REPO_ROOT / "README.md").read_text()
    section = text.split("## Install on your own cluster", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, "README's install section has no ```sh block"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_readme_install_commands_work_verbatim(cluster: Cluster) -> None:
    commands = readme_install_commands()
    assert any(c.startswith("helm ") for c in commands)
    env = {
        **os.environ,
        "KUBECONFIG": str(cluster.kubeconfig),
        "PATH": f"{DEFAULT_BIN}:{os.environ['PATH']}",
    }
    try:
        for command in commands:
            run("bash", "-euo", "pipefail", "-c", command, env=env, timeout=300)
        status = run(tool("helm"), "status", "spy-options", "-n", "spy-system", env=env).stdout
        assert "STATUS: deployed" in status
        dep = cluster.kubectl.get("deployment", "spy-options-operator", "spy-system")
        assert dep["status"]["availableReplicas"] == 2
    finally:
        run(
            tool("helm"),
            "uninstall",
            "spy-options",
            "-n",
            "spy-system",
            "--wait",
            env=env,
            check=False,
        )
