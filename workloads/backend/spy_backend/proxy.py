"""Whether the Azure SDK clients should read proxy settings from the environment.

Used by the storage and Web PubSub clients. With env settings on, aiohttp looks up
netrc and the proxy in a worker thread for every request (two thread hops per call), so
they are on only when the environment actually names a proxy.
"""

from __future__ import annotations

import os

PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy")


def proxy_configured() -> bool:
    return any(os.environ.get(name) for name in PROXY_VARIABLES)
