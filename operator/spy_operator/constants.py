"""Every name the operator puts on the cluster: API group, labels, annotations, managers.

Imported by builders, the reconcilers and tests, so a key is spelled in one place.
"""

from __future__ import annotations

GROUP = "spyoptions.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

# Server-side apply field manager: Argo CD and humans keep their own managers.
FIELD_MANAGER = "spy-operator"

LABEL_NAME = "app.kubernetes.io/name"
LABEL_INSTANCE = "app.kubernetes.io/instance"
LABEL_COMPONENT = "app.kubernetes.io/component"
LABEL_PART_OF = "app.kubernetes.io/part-of"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY = "spy-operator"
PART_OF = "spyoptions"

# Our own annotation prefix (never kopf's defaults).
ANNOTATION_PREFIX = GROUP
ANNOTATION_DESIRED_HASH = f"{GROUP}/desired-hash"
ANNOTATION_OWNER_KIND = f"{GROUP}/owner-kind"

# The global halt lives outside everything Argo CD syncs, so a sync cannot un-halt:
#   kubectl -n spy-system create configmap spyoptions-halt --from-literal=reason="..."
HALT_CONFIGMAP = "spyoptions-halt"
DEFAULT_OPERATOR_NAMESPACE = "spy-system"
LEASE_NAME = "spy-operator-leader"

KIND_BOT = "TradingBot"
KIND_GATEWAY = "IBGateway"
KIND_DETECTOR = "OptionsDetector"
PLURAL = {KIND_BOT: "tradingbots", KIND_GATEWAY: "ibgateways", KIND_DETECTOR: "optionsdetectors"}

COMPONENT = {KIND_BOT: "trading-bot", KIND_GATEWAY: "ib-gateway", KIND_DETECTOR: "options-detector"}

CREDENTIAL_KEYS = ("username", "password")
