"""Development tooling: the local control plane, the demo, Azurite, the backend dev
stack, a sample feed and a protocol-level IB Gateway stand-in.

Used by `make cluster`, `make demo`, the tests and the benchmarks. No runtime package
(spy_operator, spy_analytics, spy_detector, spy_backend, spy_bot) imports this one; the
import-linter contracts in pyproject.toml (run by `make lint`) enforce that.
"""
