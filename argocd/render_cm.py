"""Writes argocd/argocd-cm.yaml, the argocd-cm snippet users paste, from health/*.lua.

Run `python argocd/render_cm.py` after editing a health script;
tests/delivery/test_argocd_health.py fails when the snippet and the scripts differ, and
runs the scripts through Argo CD's own Lua code by reading this snippet.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
HEADER = """\
# Argo CD health checks for the spyoptions.io kinds. Merge these keys into the
# argocd-cm ConfigMap of your Argo CD (namespace argocd), e.g.
#   kubectl -n argocd patch configmap argocd-cm --type merge --patch-file argocd/argocd-cm.yaml
# Generated from argocd/health/*.lua by argocd/render_cm.py; docs/install.md explains
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


def render() -> str:
    parts = [HEADER]
    for script in sorted((HERE / "health").glob("*.lua")):
        key = f"resource.customizations.health.{script.stem}"
        body = "".join(
            f"    {line}" if line.strip() else "\n" for line in script.read_text().splitlines(True)
        )
        parts.append(f"  {key}: |\n{body}")
    return "".join(parts)


def main() -> int:
    (HERE / "argocd-cm.yaml").write_text(render())
    return 0


if __name__ == "__main__":
    sys.exit(main())
