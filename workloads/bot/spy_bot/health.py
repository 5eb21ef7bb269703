"""HTTP endpoints for the kubelet and Prometheus: /healthz, /readyz, /metrics.

Started by ``process.run_bot``. /healthz answers 200 while the event loop runs (a
wedged loop fails the liveness probe). /readyz answers 200 while the bot is joined to
the hub and connected to the gateway, 503 with the reasons otherwise. Bound to
``SPY_HTTP_HOST``/``SPY_HTTP_PORT``; port 0 picks a free one (tests). The server is
spy_runtime.health's, shared with the detector.
"""

from spy_runtime.health import HealthServer, ReadinessCheck

__all__ = ["HealthServer", "ReadinessCheck"]
