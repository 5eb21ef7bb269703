"""Schema source of the OptionsDetector CRD: spec and status. Listed in kinds.py."""

from __future__ import annotations

from .fields import IMAGE_PULL_SECRETS, RESOURCES, VPN, i, local_ref, n, obj, s, status_common

OPTIONS_DETECTOR_SPEC = obj(
    "Desired state of the options-anomaly detector.",
    {
        "image": s("Detector container image.", minLength=1),
        "gatewayRef": local_ref("the IBGateway the detector reads market data from"),
        "symbol": s("Underlying symbol.", pattern="^[A-Z]{1,6}$", default="SPY"),
        "shards": i(
            "Detector replicas; shard i of n takes the expiries whose index modulo n is i. "
            "Each shard gets its own IB client id.",
            minimum=1,
            maximum=32,
            default=1,
        ),
        "expiryWindow": obj(
            "Which expiries to watch, in days to expiry (DTE).",
            {
                "minDte": i("Smallest DTE.", minimum=0, maximum=1000, default=0),
                "maxDte": i("Largest DTE.", minimum=0, maximum=1000, default=60),
            },
            **{
                "x-kubernetes-validations": [
                    {"rule": "self.minDte <= self.maxDte", "message": "minDte must be <= maxDte"}
                ]
            },
        ),
        "strikeWindow": obj(
            "Which strikes to watch around the spot price.",
            {
                "percent": n(
                    "Half-width as a fraction of spot, e.g. 0.1 = +/-10%.",
                    minimum=0.005,
                    maximum=1,
                    default=0.1,
                ),
            },
        ),
        "marketDataType": s(
            "IB market data type.",
            enum=["live", "frozen", "delayed", "delayed-frozen"],
            default="delayed",
        ),
        "thresholds": obj(
            "Detection thresholds; each unset field keeps the analytics default "
            "(docs/analytics.md). A z-score or ratio here sets the rule's LOW band.",
            {
                "ivResidualZ": n("IV residual z-score vs the fitted smile (default 5).", minimum=0),
                "minVolume": i("Volume floor of the volume/OI rule (default 500).", minimum=0),
                "minOpenInterest": i(
                    "Open interest floor of the volume/OI rule (default 100).", minimum=0
                ),
                "minPrice": n(
                    "Option price floor of the volume/OI rule, USD (default 0.10).", minimum=0
                ),
                "volOiRatio": n("Volume/open interest ratio (default 1.25).", minimum=0),
                "volumeZ": n(
                    "Volume z-score vs the contract's intraday baseline (default 5).", minimum=0
                ),
                "spreadBlowoutZ": n(
                    "Bid-ask spread z-score vs its own baseline (default 3).", minimum=0
                ),
            },
        ),
        "backend": obj(
            "Where the detector publishes signals.",
            {
                "url": s(
                    "Backend base URL, e.g. http://spy-backend.spy.svc:8000.", pattern="^https?://"
                ),
                "tokenSecretRef": obj(
                    "Secret with the ingest bearer token.",
                    {
                        "name": s("Secret name.", minLength=1),
                        "key": s("Key in the Secret.", default="token"),
                    },
                    ["name"],
                ),
            },
            ["url"],
        ),
        "dividends": obj(
            "The underlying's discrete cash dividends, for the forward, parity and the "
            "American early-exercise bounds (docs/analytics.md).",
            {
                "schedule": {
                    "type": "array",
                    "maxItems": 64,
                    "description": "Known ex-dividend dates and amounts; each replaces the "
                    "projected dividend in its calendar month.",
                    "items": obj(
                        "One cash dividend.",
                        {
                            "exDate": s("Ex-dividend date, YYYY-MM-DD.", format="date"),
                            "amount": n("Cash amount per share, USD.", minimum=0),
                        },
                        ["exDate", "amount"],
                    ),
                },
                "projectedQuarterly": n(
                    "Amount projected on SPY's quarterly ex-dates (third Friday of Mar, Jun, "
                    "Sep, Dec) for a year; 0 projects none. Unset: the detector's default "
                    "(1.85 for SPY, 0 otherwise).",
                    minimum=0,
                ),
            },
        ),
        "imagePullSecrets": IMAGE_PULL_SECRETS,
        "vpn": VPN,
        "resources": RESOURCES,
    },
    ["image", "gatewayRef"],
)

OPTIONS_DETECTOR_STATUS = status_common(
    {
        "readyShards": i("Ready detector replicas."),
        "ibClientIds": {
            "type": "array",
            "description": "IB client ids of the shards, by ordinal.",
            "items": {"type": "integer", "description": "Client id of one shard."},
        },
        "statefulSet": s("Name of the detector StatefulSet."),
    }
)
