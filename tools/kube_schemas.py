"""Writes kubeconform's JSON schemas offline, one file per kind.

Called by tools/build-delivery.sh. Native kinds come from the Kubernetes module's
api/openapi-spec/swagger.json (every definition with x-kubernetes-group-version-kind,
$refs inlined); the file names follow kubeconform's schema-location template
`{{ .ResourceKind }}{{ .KindSuffix }}.json` (e.g. deployment-apps-v1.json). Strict like
kubeconform's published "-strict" schemas: objects with properties reject unknown keys.
CRD schemas are written beside them by kubeconform's own scripts/openapi2jsonschema.py.

Usage: python tools/kube_schemas.py SWAGGER_JSON OUT_DIR
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

INT_OR_STRING = {"oneOf": [{"type": "string"}, {"type": "integer"}]}
QUANTITY = {"oneOf": [{"type": "string"}, {"type": "number"}]}


def kind_suffix(group: str, version: str) -> str:
    """kubeconform's KindSuffix: '-<first label of the group>-<version>' or '-<version>'."""
    return f"-{group.split('.')[0]}-{version}".lower() if group else f"-{version}".lower()


def inline(node: Any, defs: dict[str, Any], seen: tuple[str, ...]) -> Any:
    if isinstance(node, list):
        return [inline(x, defs, seen) for x in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str):
        name = ref.rsplit("/", 1)[-1]
        if name.endswith("api.resource.Quantity"):
            return dict(QUANTITY)
        if name in seen:  # JSONSchemaProps refers to itself: accept anything below
            return {}
        return inline(defs[name], defs, (*seen, name))
    out: dict[str, Any] = {}
    for key, value in node.items():
        out[key] = inline(value, defs, seen)
    if out.get("format") == "int-or-string":
        return dict(INT_OR_STRING)
    if "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


def main(argv: list[str]) -> int:
    swagger = json.loads(Path(argv[1]).read_text())
    out_dir = Path(argv[2])
    out_dir.mkdir(parents=True, exist_ok=True)
    defs: dict[str, Any] = swagger["definitions"]
    written = 0
    for name, schema in defs.items():
        for gvk in schema.get("x-kubernetes-group-version-kind", []):
            if "metadata" not in schema.get("properties", {}):
                continue  # list/options types carry a GVK too; only objects are applied
            full = inline(schema, defs, (name,))
            file = f"{gvk['kind'].lower()}{kind_suffix(gvk['group'], gvk['version'])}.json"
            (out_dir / file).write_text(json.dumps(full))
            written += 1
    print(f"{written} schemas written to {out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
