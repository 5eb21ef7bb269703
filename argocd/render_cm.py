"""Writes the Argo CD health scripts argocd/health/*.lua from their one source in
argocd/health/src/, and argocd/argocd-cm.yaml, the argocd-cm snippet users paste.

Argo CD runs each health script alone in its sandbox (no `require`), so the blocks the
three kinds share cannot be a library at run time; they live once in
health/src/common/ and are pasted in here instead. health/src/<Kind>.lua is a kind's
script with `--@include common/<part>.lua` lines, each replaced by that part; lines
of a part that start with `---` describe the part and are not copied.

Run `python argocd/render_cm.py` after editing anything under health/src/.
tests/delivery/test_argocd_health_scripts.py fails when the committed scripts or the
snippet differ from what this writes; tests/delivery/test_argocd_health.py runs the
scripts through Argo CD's own Lua code by reading the snippet.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "health" / "src"
GROUP = "spyoptions.io"
INCLUDE = re.compile(r"^--@include (common/[\w.]+\.lua)\n", re.MULTILINE)
HEADER = """\
# Argo CD health checks for the spyoptions.io kinds. Merge these keys into the
# argocd-cm ConfigMap of your Argo CD (namespace argocd), e.g.
#   kubectl -n argocd patch configmap argocd-cm --type merge --patch-file argocd/argocd-cm.yaml
# Generated from argocd/health/src/ by argocd/render_cm.py; docs/install.md explains
# what Argo CD shows for a bot during arming, halt and approval expiry.
apiVersion: v1
kind: ConfigMap
metadata:
  name: argocd-cm
  namespace: argocd
  labels:
    app.kubernetes.io/name: argocd-cm
    app.kubernetes.io/part-of: argocd
data:
"""


def _part(relative: str) -> str:
    text = (SOURCE / relative).read_text()
    return "".join(line for line in text.splitlines(True) if not line.startswith("---"))


def render_scripts() -> dict[str, str]:
    """{"spyoptions.io_<Kind>.lua": script} for every kind in health/src/."""
    scripts = {}
    for source in sorted(SOURCE.glob("*.lua")):
        body = INCLUDE.sub(lambda m: _part(m.group(1)), source.read_text())
        if "--@include" in body:
            raise ValueError(f"{source.name}: an --@include line that names no common part")
        stamp = f"-- Generated from argocd/health/src/{source.name} by argocd/render_cm.py.\n"
        scripts[f"{GROUP}_{source.name}"] = stamp + body
    return scripts


def render(scripts: dict[str, str] | None = None) -> str:
    """The argocd-cm snippet: one health key per script."""
    parts = [HEADER]
    for name, script in sorted((scripts or render_scripts()).items()):
        key = f"resource.customizations.health.{Path(name).stem}"
        body = "".join(f"    {line}" if line.strip() else "\n" for line in script.splitlines(True))
        parts.append(f"  {key}: |\n{body}")
    return "".join(parts)


def main() -> int:
    scripts = render_scripts()
    for name, script in scripts.items():
        (HERE / "health" / name).write_text(script)
    (HERE / "argocd-cm.yaml").write_text(render(scripts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
