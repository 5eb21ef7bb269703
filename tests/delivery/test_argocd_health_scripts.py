"""The Argo CD health scripts come from one source: argocd/health/src/ (a script per
kind plus the blocks they share in src/common/) rendered by argocd/render_cm.py into
argocd/health/*.lua and the argocd-cm snippet. These checks need no Argo CD; running
the scripts through Argo CD's own Lua code is test_argocd_health.py.
"""

from __future__ import annotations

import importlib.util
from types import ModuleType

import yaml
from spy_dev.devcluster import REPO_ROOT

ARGOCD = REPO_ROOT / "argocd"
SNIPPET = ARGOCD / "argocd-cm.yaml"
KINDS = ("IBGateway", "OptionsDetector", "TradingBot")


def render_cm() -> ModuleType:
    spec = importlib.util.spec_from_file_location("render_cm", ARGOCD / "render_cm.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_scripts_are_generated_from_the_one_source() -> None:
    scripts = render_cm().render_scripts()
    assert sorted(scripts) == [f"spyoptions.io_{kind}.lua" for kind in KINDS]
    for name, script in scripts.items():
        committed = (ARGOCD / "health" / name).read_text()
        assert committed == script, f"{name}: run python argocd/render_cm.py"


def test_every_common_part_is_used() -> None:
    """A shared block no script includes is dead source: it would drift unseen."""
    sources = "".join(p.read_text() for p in (ARGOCD / "health" / "src").glob("*.lua"))
    for part in (ARGOCD / "health" / "src" / "common").glob("*.lua"):
        assert f"--@include common/{part.name}\n" in sources, part.name


def test_snippet_matches_the_health_scripts() -> None:
    """argocd/argocd-cm.yaml is generated from argocd/health/src/ (render_cm.py)."""
    module = render_cm()
    assert SNIPPET.read_text() == module.render(), "run: python argocd/render_cm.py"
    data = yaml.safe_load(SNIPPET.read_text())["data"]
    assert sorted(data) == [
        f"resource.customizations.health.spyoptions.io_{kind}"
        for kind in ("IBGateway", "OptionsDetector", "TradingBot")
    ]
