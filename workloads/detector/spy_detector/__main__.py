"""Command line: ``python -m spy_detector {run,scan} ...``.

``run`` starts the service configured by environment variables (the operator's
StatefulSet sets them; docs/detector.md lists every one). ``scan FILE`` analyses a
recorded snapshot file offline and prints one JSON object per anomaly on stdout, so a
trader can check a chain without the platform.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from datetime import date

RUN_EPILOG = """\
environment (see docs/detector.md for defaults and details):
  SPY_SOURCE               ibkr | replay | synthetic (default ibkr)
  SPY_SHARD_COUNT          number of shards (StatefulSet replicas), default 1
  SPY_SHARD_INDEX          this shard; default: the ordinal suffix of HOSTNAME (<name>-<i>)
  SPY_IB_HOST, SPY_IB_PORT gateway endpoint (default 127.0.0.1:4002)
  SPY_IB_CLIENT_ID         TWS API client id, unique per gateway, or
  SPY_IB_CLIENT_ID_BASE    first id of the set's block: this shard uses base + index
  SPY_IB_MARKET_DATA_TYPE  live | frozen | delayed | delayed-frozen (default live)
  SPY_BACKEND_URL          backend base URL; ingest goes to {url}/api/v1/ingest
  SPY_BACKEND_TOKEN        bearer token for ingest (or SPY_BACKEND_TOKEN_FILE)
  SPY_HTTP_PORT            /healthz /readyz /metrics port (default 8080)
  SPY_DIVIDENDS            declared cash dividends YYYY-MM-DD:AMOUNT,... (default none)
  SPY_DIVIDEND_QUARTERLY   USD projected on SPY's quarterly ex-dates (default 1.85 for SPY)
  SPY_DTE_MIN/MAX, SPY_STRIKE_RANGE, SPY_THRESHOLDS (JSON), SPY_REPLAY_FILE, ...
"""

SEVERITIES = ("LOW", "MEDIUM", "HIGH")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "scan":
        return _scan(
            args.file,
            args.min_severity,
            args.thresholds,
            args.last_only,
            (args.dividends, args.dividend_quarterly),
        )
    return _run(check_only=args.check_config)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m spy_detector",
        description="SPY option-chain anomaly detector.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser(
        "run",
        help="run the detector service (configured by environment variables)",
        description="Run the detector service: market data -> analytics -> backend.",
        epilog=RUN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument(
        "--check-config", action="store_true", help="validate the environment and exit"
    )
    _add_scan(sub)
    return parser


def _add_scan(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    scan = sub.add_parser(
        "scan",
        help="analyse a recorded snapshot file and print one JSON object per anomaly",
        description=(
            "Analyse every snapshot of FILE (spy_analytics JSONL snapshot schema, see"
            " docs/analytics.md) in order and print one JSON object per anomaly on stdout:"
            " kind, contract, severity, score, reason (plus iv, fitted_iv, k, ts, id)."
            " A summary goes to stderr."
        ),
    )
    scan.add_argument("file", help="snapshot file (JSONL); '-' reads stdin")
    scan.add_argument(
        "--min-severity", choices=SEVERITIES, default="LOW", help="hide lower severities"
    )
    scan.add_argument(
        "--thresholds",
        default="",
        help="JSON object of analytics overrides, e.g. '{\"vol_oi.min_volume\": 1000}'",
    )
    scan.add_argument(
        "--dividends",
        default="",
        help="declared cash dividends YYYY-MM-DD:AMOUNT,... for snapshots whose header"
        " has none (as SPY_DIVIDENDS)",
    )
    scan.add_argument(
        "--dividend-quarterly",
        type=float,
        default=1.85,
        help="USD projected on SPY's quarterly ex-dates for such snapshots (default"
        " 1.85, as SPY_DIVIDEND_QUARTERLY; 0: none)",
    )
    scan.add_argument(
        "--last-only",
        action="store_true",
        help="print anomalies of the last snapshot only (earlier ones still build baselines)",
    )


def _scan(
    path: str,
    min_severity: str,
    thresholds: str,
    last_only: bool,
    dividends: tuple[str, float] = ("", 1.85),
) -> int:
    from spy_analytics import read_snapshots
    from spy_analytics.dividends import DividendSchedule

    from spy_detector.analysis import ChainAnalyzer, load_config, scan_line

    try:
        declared = DividendSchedule.parse(dividends[0])
        if not dividends[1] >= 0.0:
            raise ValueError(f"--dividend-quarterly must be >= 0, got {dividends[1]}")
    except ValueError as exc:
        print(f"scan: bad dividends: {exc}", file=sys.stderr)
        return 2

    def schedule(today: date) -> DividendSchedule:
        return DividendSchedule.spy_projected(today, dividends[1], 1.0).merged(declared)

    try:
        overrides = json.loads(thresholds) if thresholds else {}
        analyzer = ChainAnalyzer(load_config(overrides), schedule)
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        print(f"scan: bad --thresholds: {exc}", file=sys.stderr)
        return 2
    floor = SEVERITIES.index(min_severity)
    source = sys.stdin if path == "-" else path
    snapshots = anomalies = bad = 0
    pending: list[str] = []
    try:
        for snapshot in read_snapshots(source):
            result = analyzer(snapshot)
            snapshots += 1
            bad += result.data_quality.total
            lines = [
                json.dumps(scan_line(a))
                for a in result.to_wire()["anomalies"]
                if SEVERITIES.index(a["severity"]) >= floor
            ]
            anomalies += len(lines)
            if last_only:
                pending = lines
            else:
                sys.stdout.write("".join(line + "\n" for line in lines))
    except OSError as exc:
        print(f"scan: cannot read {path}: {exc}", file=sys.stderr)
        return 2
    if last_only:
        sys.stdout.write("".join(line + "\n" for line in pending))
    if snapshots == 0:
        print(f"scan: no snapshot in {path}", file=sys.stderr)
        return 2
    summary = {"snapshots": snapshots, "anomalies": anomalies, "bad_quotes": bad}
    print(json.dumps(summary), file=sys.stderr)
    return 0


def _run(check_only: bool) -> int:
    from spy_detector import logs
    from spy_detector.service import run_service
    from spy_detector.settings import Settings, SettingsError

    try:
        settings = Settings.from_env(os.environ)
    except (SettingsError, OSError) as exc:
        print(f"spy_detector: configuration error: {exc}", file=sys.stderr)
        return 2
    if check_only:
        print(json.dumps(settings.redacted()))
        return 0
    logs.setup(settings.log_level)
    return asyncio.run(run_service(settings))


if __name__ == "__main__":
    sys.exit(main())
