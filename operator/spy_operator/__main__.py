"""`python -m spy_operator`: run the operator against $KUBECONFIG or in-cluster."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys

import kopf

from spy_operator.admission import Policy
from spy_operator.webhook import WebhookConfigError, key_from_env, policy_from_env, serve


def watched_namespaces(namespaces: list[str], operator_namespace: str) -> list[str]:
    """With --namespace, also watch the operator's own namespace: the halt ConfigMap
    lives there, and an operator that cannot see it cannot be halted."""
    if not namespaces:
        return []
    return [*namespaces, operator_namespace] if operator_namespace not in namespaces else namespaces


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        hook_settings = _webhook_settings(args)
    except WebhookConfigError as err:
        print(f"spy-operator: {err}", file=sys.stderr)
        return 2
    _configure(args)
    if args.webhook_only:
        return _serve_webhook_only(args, hook_settings)
    if hook_settings is not None:
        os.environ["SPY_WEBHOOK_PORT"] = str(args.webhook_port)
        os.environ["SPY_WEBHOOK_HOST"] = args.webhook_host
        os.environ["SPY_WEBHOOK_CERT"] = args.webhook_cert
        os.environ["SPY_WEBHOOK_KEY"] = args.webhook_key

    import spy_operator.handlers  # registers the handlers  # noqa: F401

    liveness = f"http://0.0.0.0:{args.health_port}/healthz" if args.health_port else None
    kopf.run(
        clusterwide=not args.namespace,
        namespaces=watched_namespaces(args.namespace, args.operator_namespace),
        standalone=True,  # HA is the leader Lease (leader.py), not kopf peering
        liveness_endpoint=liveness,
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m spy_operator",
        description="Reconcile TradingBot, IBGateway and OptionsDetector resources "
        "(spyoptions.io/v1alpha1). Uses $KUBECONFIG, else the in-cluster service account.",
    )
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument(
        "--namespace",
        "-n",
        action="append",
        default=[],
        help="watch only this namespace (repeatable); default: all namespaces",
    )
    parser.add_argument(
        "--operator-namespace",
        default=os.environ.get("SPY_OPERATOR_NAMESPACE", "spy-system"),
        help="namespace of the halt ConfigMap and the leader Lease",
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=int(os.environ.get("SPY_METRICS_PORT", "8080")),
        help="Prometheus metrics port (0 disables)",
    )
    parser.add_argument(
        "--health-port",
        type=int,
        default=int(os.environ.get("SPY_HEALTH_PORT", "0")),
        help="kopf liveness endpoint port (0 disables)",
    )
    parser.add_argument(
        "--resync-seconds",
        type=float,
        default=float(os.environ.get("SPY_RESYNC_SECONDS", "30")),
        help="reconcile every object at least this often",
    )
    parser.add_argument(
        "--no-leader-election",
        action="store_true",
        help="act without holding the leader Lease (one replica only)",
    )
    _webhook_arguments(parser)
    parser.add_argument("--verbose", "-v", action="store_true", help="debug logs")
    return parser


def _webhook_arguments(parser: argparse.ArgumentParser) -> None:
    hook = parser.add_argument_group(
        "approval webhook", "two-person rule for arming (docs/operations.md)"
    )
    hook.add_argument(
        "--webhook-port",
        type=int,
        default=int(os.environ.get("SPY_WEBHOOK_PORT", "0")),
        help="serve the TradingBot admission webhook on this HTTPS port (0: off)",
    )
    hook.add_argument("--webhook-host", default=os.environ.get("SPY_WEBHOOK_HOST", "0.0.0.0"))
    hook.add_argument("--webhook-cert", default=os.environ.get("SPY_WEBHOOK_CERT", ""))
    hook.add_argument("--webhook-key", default=os.environ.get("SPY_WEBHOOK_KEY", ""))
    hook.add_argument(
        "--webhook-only",
        action="store_true",
        help="serve only the webhook (no controller); for a separate webhook Deployment",
    )


def _configure(args: argparse.Namespace) -> None:
    """Hand the settings to the handlers (they read the environment) and set up logging."""
    os.environ["SPY_OPERATOR_NAMESPACE"] = args.operator_namespace
    os.environ["SPY_METRICS_PORT"] = str(args.metrics_port)
    os.environ["SPY_RESYNC_SECONDS"] = str(args.resync_seconds)
    if args.no_leader_election:
        os.environ["SPY_LEADER_ELECTION"] = "false"
    kopf.configure(verbose=args.verbose, log_format=kopf.LogFormat.JSON, log_prefix=False)
    logging.getLogger("spy_operator").setLevel(logging.DEBUG if args.verbose else logging.INFO)
    if not args.verbose:
        # kopf logs every handled watch event at info; our reconcilers log what matters.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)


def _webhook_settings(args: argparse.Namespace) -> tuple[Policy, bytes] | None:
    """Validated webhook settings, or None when the webhook is off. The signing key is
    needed either way for the gate to verify approvals (else ApprovalUnverified)."""
    key = key_from_env()
    if not args.webhook_port:
        if args.webhook_only:
            raise WebhookConfigError("--webhook-only needs --webhook-port")
        return None
    if not args.webhook_cert or not args.webhook_key:
        raise WebhookConfigError("--webhook-port needs --webhook-cert and --webhook-key")
    if key is None:
        raise WebhookConfigError("--webhook-port needs SPY_APPROVAL_KEY_FILE (the signing key)")
    return policy_from_env(), key


def _serve_webhook_only(args: argparse.Namespace, settings: tuple[Policy, bytes] | None) -> int:
    assert settings is not None
    policy, key = settings
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    async def forever() -> None:
        runner = await serve(
            args.webhook_port, args.webhook_cert, args.webhook_key, policy, key, args.webhook_host
        )
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(forever())
    return 0


if __name__ == "__main__":
    sys.exit(main())
