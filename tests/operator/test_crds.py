"""The CRDs: generated files are current and every field is documented."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from spy_dev.devcluster import REPO_ROOT

CRDS = REPO_ROOT / "crds"


def load_generator() -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location("crd_generate", CRDS / "generate.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_crds_match_the_generator(tmp_path: Path) -> None:
    gen = load_generator()
    gen.main(["generate.py", str(tmp_path), str(tmp_path / "api.md"), str(tmp_path / "d.py")])
    defaults = REPO_ROOT / "operator" / "spy_operator" / "crd_defaults.py"
    assert defaults.read_text() == (tmp_path / "d.py").read_text(), (
        "run `make crds`: operator/spy_operator/crd_defaults.py is stale"
    )
    assert (REPO_ROOT / "docs" / "api.md").read_text() == (tmp_path / "api.md").read_text(), (
        "run `make crds`: docs/api.md is stale"
    )
    for kind in gen.KINDS:
        name = f"{kind['plural']}.yaml"
        assert (CRDS / name).read_text() == (tmp_path / name).read_text(), (
            f"run `make crds`: {name} is stale"
        )


def walk(schema: dict[str, Any], path: str) -> list[str]:
    missing = [] if "description" in schema or path.endswith(".metadata") else [path]
    for key, sub in (schema.get("properties") or {}).items():
        missing += walk(sub, f"{path}.{key}")
    if isinstance(schema.get("items"), dict):
        missing += walk(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        missing += walk(schema["additionalProperties"], f"{path}{{}}")
    return missing


@pytest.mark.parametrize("path", sorted(CRDS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_field_has_a_description(path: Path) -> None:
    crd = yaml.safe_load(path.read_text())
    assert crd["spec"]["names"]["categories"] == ["spyoptions"]
    version = crd["spec"]["versions"][0]
    assert version["subresources"] == {"status": {}}
    assert walk(version["schema"]["openAPIV3Schema"], crd["spec"]["names"]["kind"]) == []
