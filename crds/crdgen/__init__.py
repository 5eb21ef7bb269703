"""Schema source and emitters of the project's CRDs, driven by crds/generate.py.

fields.py holds the shared building blocks, one module per kind holds its spec and
status (tradingbot.py, ibgateway.py, optionsdetector.py), kinds.py lists them, and
emit_yaml.py / emit_docs.py / emit_defaults.py write the CRDs, docs/api.md and
operator/spy_operator/crd_defaults.py from that one source.
"""
