"""Generates the three CRDs in crds/ from one Python description (run `make crds`).

The description lives in the crdgen package beside this script: shared sub-schemas
(pull secrets, VPN probe, resources, conditions) in crdgen/fields.py so the kinds
cannot drift apart, one module per kind (tradingbot.py, ibgateway.py,
optionsdetector.py), and one emitter per output (emit_yaml.py, emit_docs.py,
emit_defaults.py). tests/operator/test_crds.py fails when the committed YAML is not
what this script writes. Every field carries a description so `kubectl explain` teaches
the API (DESIGN §3).
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script (`make crds`) or loaded by path (tests/operator/test_crds.py): either
# way the crdgen package beside this file must be importable.
sys.path.insert(0, str(Path(__file__).parent))

from crdgen.emit_defaults import render_defaults
from crdgen.emit_docs import render_docs
from crdgen.emit_yaml import render
from crdgen.kinds import KINDS

__all__ = ["KINDS", "main", "render", "render_defaults", "render_docs"]


def main(argv: list[str]) -> int:
    root = Path(__file__).parent.parent
    out_dir = Path(argv[1]) if len(argv) > 1 else Path(__file__).parent
    for kind in KINDS:
        (out_dir / f"{kind['plural']}.yaml").write_text(render(kind))
    docs = Path(argv[2]) if len(argv) > 2 else root / "docs" / "api.md"
    docs.write_text(render_docs())
    defaults = Path(argv[3]) if len(argv) > 3 else root / "operator/spy_operator/crd_defaults.py"
    defaults.write_text(render_defaults())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
