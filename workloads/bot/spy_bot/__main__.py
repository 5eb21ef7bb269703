"""Command line: ``python -m spy_bot run [--check-config]`` and ``python -m spy_bot order-ref``.

``run`` starts the bot configured by environment variables (the operator's Deployment
sets them; docs/bot.md lists every one). ``order-ref BOT SIGNAL_ID`` prints the orderRef
a signal gets, to find its order in TWS.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence

RUN_EPILOG = """\
environment (docs/bot.md has defaults, meanings and who sets each):
  SPY_TRADINGBOT_NAME, SPY_TRADINGBOT_NAMESPACE  own TradingBot (read before every order)
  SPY_BOT_MODE             paper | live (default paper; paper refuses a non-paper account)
  SPY_IB_HOST, SPY_IB_PORT, SPY_IB_CLIENT_ID   gateway endpoint and API client id
  SPY_STRATEGY, SPY_RISK   spec.strategy and spec.risk as JSON
  SPY_BACKEND_URL          backend base URL (negotiate, query API for backfill)
  SPY_BACKEND_TOKEN        the backend's audit token: also post the audit lines there
  SPY_SYMBOL               hub group / symbol (default SPY)
  KUBECONFIG               kubeconfig outside a cluster (default: service account)
  SPY_HTTP_HOST, SPY_HTTP_PORT  /healthz /readyz /metrics (default 0.0.0.0:8080)
  SPY_AUDIT_FILE           append the audit log here too (default: stdout only)
  SPY_ARMED_CHECK_SECONDS, SPY_SIGNAL_MAX_AGE_SECONDS, SPY_IB_TIMEOUT, SPY_LOG_LEVEL
"""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m spy_bot",
        description="Paper-by-default SPY options bot behind the TradingBot safety gate.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser(
        "run",
        help="run the bot (configured by environment variables)",
        description="Signals from the hub -> strategy -> risk -> orders via IB Gateway.",
        epilog=RUN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument(
        "--check-config", action="store_true", help="validate the environment and exit"
    )
    ref = sub.add_parser("order-ref", help="print the orderRef of a signal at a bot")
    ref.add_argument("bot", help="namespace/name of the TradingBot")
    ref.add_argument("signal_id", help="the anomaly's or signal's id")
    args = parser.parse_args(argv)
    if args.command == "order-ref":
        from spy_bot.broker import order_ref

        print(order_ref(args.bot, args.signal_id))
        return 0
    return _run(check_only=args.check_config)


def _run(check_only: bool) -> int:
    from spy_bot import logs
    from spy_bot.settings import Settings, SettingsError

    try:
        settings = Settings.from_env(os.environ)
    except SettingsError as exc:
        print(f"spy_bot: configuration error: {exc}", file=sys.stderr)
        return 2
    if check_only:
        print(json.dumps(settings.redacted()))
        return 0
    logs.setup(settings.log_level)
    from spy_bot.kube import KubeConfigError
    from spy_bot.process import run_bot

    try:
        return asyncio.run(run_bot(settings))
    except KubeConfigError as exc:
        print(f"spy_bot: cannot read own TradingBot: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
