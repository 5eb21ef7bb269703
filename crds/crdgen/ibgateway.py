"""Schema source of the IBGateway CRD: spec and status. Listed in kinds.py."""

from __future__ import annotations

from .fields import IMAGE_PULL_SECRETS, QUANTITY, RESOURCES, VPN, b, i, obj, s, status_common

IB_GATEWAY_SPEC = obj(
    "Desired state of an Interactive Brokers Gateway (IBC-based image).",
    {
        "image": s(
            "Gateway container image.", minLength=1, default="ghcr.io/gnzsnz/ib-gateway:stable"
        ),
        "tradingMode": s("paper or live account.", enum=["paper", "live"], default="paper"),
        "credentialsSecretRef": obj(
            "Secret holding the IB login; must have keys `username` and `password`.",
            {"name": s("Name of the Secret in the same namespace.", minLength=1)},
            ["name"],
        ),
        "readOnlyApi": b(
            "Start the API in read-only mode (no orders). Live bots need false.", default=True
        ),
        "apiPort": i("TCP port of the TWS API.", minimum=1024, maximum=65535, default=4002),
        "dailyRestartTime": s(
            "Local time HH:MM of IBC's daily auto-restart, e.g. 23:45.",
            pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$",
        ),
        "timezone": s(
            "IANA time zone for dailyRestartTime.", default="America/New_York", minLength=1
        ),
        "storage": obj(
            "PersistentVolumeClaim for the gateway's settings, so 2FA device trust survives restarts.",
            {
                "size": {**QUANTITY, "description": "Requested size.", "default": "1Gi"},
                "storageClassName": s("StorageClass; empty for the cluster default."),
            },
        ),
        "imagePullSecrets": IMAGE_PULL_SECRETS,
        "vpn": VPN,
        "resources": RESOURCES,
    },
    ["credentialsSecretRef"],
)

IB_GATEWAY_STATUS = status_common(
    {
        "endpoint": s("host:port of the TWS API that consumers use; set when Ready."),
        "readyReplicas": i("Ready replicas of the gateway StatefulSet (0 or 1)."),
        "statefulSet": s("Name of the gateway StatefulSet."),
    }
)
