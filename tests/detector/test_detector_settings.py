"""Settings from the environment the operator's StatefulSet sets."""

from __future__ import annotations

from pathlib import Path

import pytest
from spy_detector.settings import Settings, SettingsError

STATEFULSET_ENV = {
    "HOSTNAME": "spy-detector-1",
    "SPY_SHARD_COUNT": "3",
    "SPY_IB_HOST": "ib-gateway.trading.svc",
    "SPY_IB_PORT": "4004",
    "SPY_IB_CLIENT_ID": "101",
    "SPY_IB_MARKET_DATA_TYPE": "delayed",
    "SPY_BACKEND_URL": "http://backend.trading.svc:8000",
    "SPY_BACKEND_TOKEN": "s3cr3t-token",
    "SPY_DTE_MAX": "45",
    "SPY_STRIKE_RANGE": "0.08",
    "SPY_THRESHOLDS": '{"vol_oi.min_volume": 1000}',
}


def test_statefulset_env() -> None:
    s = Settings.from_env(STATEFULSET_ENV)
    assert (s.shard.index, s.shard.count) == (1, 3)
    assert (s.ib.host, s.ib.port, s.ib.client_id) == ("ib-gateway.trading.svc", 4004, 101)
    assert s.ib.market_data_type == "delayed"
    assert s.ib.dte_max == 45 and s.ib.strike_range == 0.08
    assert s.backend_url == "http://backend.trading.svc:8000"
    assert s.thresholds == {"vol_oi.min_volume": 1000}
    assert "s3cr3t" not in str(s.redacted())


def test_client_id_from_base_plus_ordinal() -> None:
    env = {**STATEFULSET_ENV, "SPY_IB_CLIENT_ID": "", "SPY_IB_CLIENT_ID_BASE": "200"}
    ids = [
        Settings.from_env({**env, "HOSTNAME": f"spy-detector-{i}"}).ib.client_id for i in range(3)
    ]
    assert ids == [200, 201, 202], "distinct per shard from one pod template"
    explicit = {**env, "SPY_IB_CLIENT_ID": "7"}
    assert Settings.from_env(explicit).ib.client_id == 7


def test_token_from_file(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("from-file\n")
    env = {**STATEFULSET_ENV, "SPY_BACKEND_TOKEN": "", "SPY_BACKEND_TOKEN_FILE": str(token)}
    assert Settings.from_env(env).backend_token == "from-file"


def test_missing_token_file_is_a_settings_error(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-token"
    env = {**STATEFULSET_ENV, "SPY_BACKEND_TOKEN": "", "SPY_BACKEND_TOKEN_FILE": str(missing)}
    with pytest.raises(SettingsError, match="SPY_BACKEND_TOKEN_FILE") as info:
        Settings.from_env(env)
    assert str(missing) in str(info.value)


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"SPY_SOURCE": "kafka"}, "SPY_SOURCE"),
        ({"SPY_IB_CLIENT_ID": ""}, "SPY_IB_CLIENT_ID"),
        ({"SPY_IB_PORT": "x"}, "SPY_IB_PORT"),
        ({"SPY_IB_MARKET_DATA_TYPE": "realtime"}, "SPY_IB_MARKET_DATA_TYPE"),
        ({"SPY_BACKEND_TOKEN": ""}, "SPY_BACKEND_TOKEN"),
        ({"SPY_THRESHOLDS": "[1]"}, "SPY_THRESHOLDS"),
        ({"SPY_SOURCE": "replay"}, "SPY_REPLAY_FILE"),
        ({"SPY_SHARD_COUNT": "1"}, "shard index"),
        ({"SPY_IB_MAX_MSGS_PER_SEC": "60"}, "max_msgs_per_sec"),
    ],
)
def test_invalid_env_names_the_problem(change: dict[str, str], needle: str) -> None:
    with pytest.raises(SettingsError, match=needle):
        Settings.from_env({**STATEFULSET_ENV, **change})


def test_analytics_overrides_per_source() -> None:
    from spy_detector.analysis import load_config

    live = Settings.from_env(STATEFULSET_ENV)
    assert live.analytics_overrides() == {
        "quality.skip_missing_volume_oi": False,
        "vol_oi.min_volume": 1000,
    }
    config = load_config(live.analytics_overrides())  # every path exists in analytics
    assert config.quality.skip_missing_volume_oi is False
    kept = {**STATEFULSET_ENV, "SPY_THRESHOLDS": '{"quality.skip_missing_volume_oi": true}'}
    assert Settings.from_env(kept).analytics_overrides()["quality.skip_missing_volume_oi"]
    assert Settings.from_env({"SPY_SOURCE": "synthetic"}).analytics_overrides() == {}


def test_synthetic_needs_no_gateway() -> None:
    s = Settings.from_env({"SPY_SOURCE": "synthetic"})
    assert s.source == "synthetic" and s.backend_url == ""


def test_settings_do_not_import_ib_async() -> None:
    """Reading the settings (and ``run --check-config``) must not load ib_async:
    ``service.py`` imports the IBKR source lazily so the replay and synthetic sources
    run without it, and settings must not undo that by importing ``sources/ibkr.py``."""
    import subprocess
    import sys

    code = (
        "import sys, spy_detector.settings, spy_detector.service\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'ib_async'))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "[]", out.stdout
