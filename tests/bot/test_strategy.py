"""The strategy (spy_bot.strategy) and the signal records it reads (spy_bot.signals)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from spy_bot.signals import SignalError, from_record
from spy_bot.strategy import Skip, StrategyError, decide, limit_price, parse_strategy

TS = "2026-12-02T15:30:00Z"


def anomaly(kind: str = "iv_residual", severity: str = "HIGH", **kw: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "id": "a" * 40,
        "ts": TS,
        "symbol": "SPY",
        "kind": kind,
        "severity": severity,
        "score": 4.2,
        "reason": "x",
        "contract": {"expiry": "2026-12-11", "strike": 600.0, "right": "C"},
        "iv": 0.31,
        "fitted_iv": 0.27,
    }
    rec.update(kw)
    return rec


def test_fade_rich_sells_a_credit_vertical_with_the_wing_further_out() -> None:
    intent = decide(parse_strategy({}), from_record("anomaly", anomaly()))
    assert not isinstance(intent, Skip)
    assert intent.action == "SELL" and intent.rule == "fade-iv-residual"
    assert [(leg.strike, leg.action) for leg in intent.legs] == [(600.0, "BUY"), (605.0, "SELL")]
    assert intent.max_loss(1.5) == pytest.approx((5 - 1.5) * 100)


def test_fade_cheap_put_buys_a_debit_vertical_wing_below() -> None:
    rec = anomaly(
        iv=0.2,
        fitted_iv=0.25,
        score=-4,
        contract={"expiry": "2026-12-11", "strike": 590, "right": "P"},
    )
    intent = decide(parse_strategy({}), from_record("anomaly", rec))
    assert not isinstance(intent, Skip)
    assert intent.action == "BUY"
    assert [(leg.strike, leg.right) for leg in intent.legs] == [(590.0, "P"), (585.0, "P")]
    assert intent.max_loss(1.5) == pytest.approx(150)


def test_follow_buys_a_debit_spread() -> None:
    intent = decide(parse_strategy({}), from_record("anomaly", anomaly(kind="vol_oi")))
    assert not isinstance(intent, Skip) and intent.action == "BUY"


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (anomaly(severity="MEDIUM"), "NoRuleMatches"),
        (anomaly(kind="butterfly"), "NoRuleMatches"),
        (anomaly(contract={"expiry": "2026-12-11", "strike": 3.0, "right": "P"}), "NoWing"),
    ],
)
def test_no_order_and_why(record: dict[str, Any], reason: str) -> None:
    out = decide(parse_strategy({}), from_record("anomaly", record))
    assert isinstance(out, Skip) and out.reason == reason


def test_a_signal_without_contract_is_recorded_not_traded() -> None:
    sig = from_record(
        "signal",
        {
            "id": "s" * 40,
            "ts": TS,
            "name": "iv_spike_cluster",
            "direction": "bullish",
            "strength": 0.7,
            "reason": "r",
        },
    )
    out = decide(parse_strategy({}), sig)
    assert isinstance(out, Skip) and out.reason == "NoContract"


def test_rules_as_data() -> None:
    strat = parse_strategy(
        {
            "name": "x",
            "rules": [
                {
                    "when": {"kind": "butterfly", "minSeverity": "LOW"},
                    "action": "follow",
                    "width": "10",
                    "quantity": 2,
                }
            ],
        }
    )
    intent = decide(strat, from_record("anomaly", anomaly(kind="butterfly", severity="MEDIUM")))
    assert not isinstance(intent, Skip)
    assert intent.quantity == 2 and intent.legs[1].strike == 610.0
    assert isinstance(decide(strat, from_record("anomaly", anomaly())), Skip)


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"rules": {}}, "strategy.rules"),
        ({"rules": [{"action": "fade"}]}, r"strategy.rules\[0\].when.kind"),
        (
            {"rules": [{"when": {"kind": "x", "minSeverity": "HUGE"}, "action": "fade"}]},
            "minSeverity",
        ),
        ({"rules": [{"when": {"kind": "x"}, "action": "short"}]}, r"rules\[0\].action"),
        ({"rules": [{"when": {"kind": "x"}, "action": "fade", "width": 0}]}, "width"),
        ({"rules": [{"when": {"kind": "x"}, "action": "fade", "quantity": True}]}, "quantity"),
        ({"rules": [{"when": {"kind": "x"}, "action": "fade", "edge": "a lot"}]}, "edge"),
    ],
)
def test_bad_strategy_names_the_field(spec: dict[str, Any], field: str) -> None:
    with pytest.raises(StrategyError, match=field):
        parse_strategy(spec)


@pytest.mark.parametrize(
    ("record", "field"),
    [
        ({**anomaly(), "id": ""}, "id"),
        ({**anomaly(), "ts": "yesterday"}, "ts"),
        ({**anomaly(), "ts": "2026-12-02T15:30:00"}, "ts"),
        ({**anomaly(), "contract": None}, "contract"),
        (anomaly(contract={"expiry": "12/11", "strike": 1, "right": "C"}), "contract.expiry"),
        (anomaly(contract={"expiry": "2026-12-11", "strike": 1, "right": "X"}), "contract.right"),
        ({**anomaly(), "score": "high"}, "score"),
    ],
)
def test_bad_records_name_the_field(record: dict[str, Any], field: str) -> None:
    with pytest.raises(SignalError, match=field):
        from_record("anomaly", record)


def test_limit_price() -> None:
    intent = decide(
        parse_strategy(
            {"rules": [{"when": {"kind": "iv_residual"}, "action": "follow", "edge": 0.05}]}
        ),
        from_record("anomaly", anomaly()),
    )
    assert not isinstance(intent, Skip)
    assert limit_price(intent, 2.0, 1.0) == 1.05
    assert limit_price(intent, 1.0, 1.0) is None
    assert limit_price(intent, 9.0, 0.5) == 5.0  # never above the width
    assert from_record("anomaly", anomaly()).ts == datetime(2026, 12, 2, 15, 30, tzinfo=UTC)
    assert from_record("anomaly", anomaly()).expiry == date(2026, 12, 11)


@given(
    strike=st.floats(10, 1000),
    width=st.floats(0.5, 100),
    right=st.sampled_from(["C", "P"]),
    rich=st.booleans(),
    action=st.sampled_from(["fade", "follow"]),
    quantity=st.integers(1, 10),
    near=st.floats(0, 200),
    far=st.floats(0, 200),
)
def test_every_vertical_is_defined_risk(
    strike: float,
    width: float,
    right: str,
    rich: bool,
    action: str,
    quantity: int,
    near: float,
    far: float,
) -> None:
    rule = {
        "when": {"kind": "iv_residual", "minSeverity": "LOW"},
        "action": action,
        "width": width,
        "quantity": quantity,
    }
    rec = anomaly(
        contract={"expiry": "2026-12-11", "strike": strike, "right": right},
        iv=0.31 if rich else 0.2,
        fitted_iv=0.25,
    )
    intent = decide(parse_strategy({"rules": [rule]}), from_record("anomaly", rec))
    if isinstance(intent, Skip):
        assert intent.reason == "NoWing" and right == "P" and strike - width <= 0
        return
    buy, sell = intent.legs
    assert (buy.action, sell.action) == ("BUY", "SELL") and buy.right == sell.right == right
    # the sold leg is the wing, further out of the money, exactly `width` away
    assert (sell.strike - buy.strike) * (1 if right == "C" else -1) == pytest.approx(width)
    assert intent.action == ("SELL" if action == "fade" and rich else "BUY")
    price = limit_price(intent, near, far)
    if price is None:
        assert near - far <= 0
        return
    assert 0.01 <= price <= width + 1e-9
    assert 0 <= intent.max_loss(price) <= width * 100 * quantity + 1e-6
