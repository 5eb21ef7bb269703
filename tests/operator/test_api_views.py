"""Typed views (spy_operator.api): defaults from the schema source, one SpecError per
malformed field naming it, and the views the rest of the operator reads."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from spy_operator import api
from spy_operator import constants as c
from spy_operator.crd_defaults import DEFAULTS


def body(kind: str, spec: Any, **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": c.API_VERSION,
        "kind": kind,
        "metadata": {"name": "x", "namespace": "ns", "uid": "u", "generation": 4, **meta},
        "spec": spec,
    }


def test_bot_defaults_come_from_the_schema() -> None:
    bot = api.TradingBot.from_body(body("TradingBot", {"image": "i", "gatewayRef": {"name": "g"}}))
    assert bot.mode is api.Mode(DEFAULTS["TradingBot"]["spec.mode"]) is api.Mode.PAPER
    assert bot.armed is False and bot.approval is None and bot.vpn is None
    assert bot.strategy == {} and bot.risk == {} and bot.pull_secrets == ()
    assert bot.meta.key == ("TradingBot", "ns", "x") and bot.meta.generation == 4


def test_gateway_and_detector_defaults() -> None:
    gw = api.IBGateway.from_body(body("IBGateway", {"credentialsSecretRef": {"name": "s"}}))
    assert (gw.api_port, gw.read_only_api, gw.trading_mode) == (4002, True, api.Mode.PAPER)
    assert gw.image == DEFAULTS["IBGateway"]["spec.image"] and gw.storage_size == "1Gi"
    det = api.OptionsDetector.from_body(
        body("OptionsDetector", {"image": "d", "gatewayRef": {"name": "g"}})
    )
    assert (det.symbol, det.shards, det.min_dte, det.max_dte) == ("SPY", 1, 0, 60)
    assert det.strike_percent == 0.1 and det.market_data_type == "delayed"
    assert (det.backend_url, det.token_secret) == ("", "")


def test_nested_defaults_apply_inside_a_present_parent() -> None:
    spec = {"image": "i", "gatewayRef": {"name": "g"}, "vpn": {"host": "h", "port": 1}}
    bot = api.TradingBot.from_body(body("TradingBot", spec))
    assert bot.vpn is not None and bot.vpn.required is True and bot.vpn.timeout == 2


@pytest.mark.parametrize(
    ("kind", "spec", "field"),
    [
        ("TradingBot", {"image": "i"}, "spec.gatewayRef.name"),
        ("TradingBot", {"image": "i", "gatewayRef": {"name": "g"}, "mode": "yolo"}, "spec.mode"),
        ("TradingBot", {"image": 3, "gatewayRef": {"name": "g"}}, "spec.image"),
        ("TradingBot", "not an object", "spec"),
        ("IBGateway", {}, "spec.credentialsSecretRef.name"),
        (
            "IBGateway",
            {"credentialsSecretRef": {"name": "s"}, "apiPort": "4002"},
            "spec.apiPort",
        ),
        (
            "IBGateway",
            {"credentialsSecretRef": {"name": "s"}, "readOnlyApi": "no"},
            "spec.readOnlyApi",
        ),
        (
            "OptionsDetector",
            {"image": "d", "gatewayRef": {"name": "g"}, "shards": 0},
            "spec.shards",
        ),
        (
            "OptionsDetector",
            {"image": "d", "gatewayRef": {"name": "g"}, "strikeWindow": {"percent": "x"}},
            "spec.strikeWindow.percent",
        ),
        (
            "OptionsDetector",
            {"image": "d", "gatewayRef": {"name": "g"}, "vpn": {"host": "h", "port": "p"}},
            "spec.vpn",
        ),
    ],
)
def test_malformed_specs_name_the_field(kind: str, spec: Any, field: str) -> None:
    with pytest.raises(api.SpecError) as err:
        api.view(body(kind, spec))
    assert err.value.field == field
    assert field in str(err.value)


def test_only_a_literal_true_arms() -> None:
    for value in ("true", 1, "yes", None):
        spec = {"image": "i", "gatewayRef": {"name": "g"}, "armed": value}
        assert api.TradingBot.from_body(body("TradingBot", spec)).armed is False


def test_approval_is_parsed_once_with_its_problems_kept() -> None:
    spec = {
        "image": "i",
        "gatewayRef": {"name": "g"},
        "approval": {"approvedBy": "bob", "reason": " ", "expiresAt": "2026-11-25T21:00:00Z"},
    }
    approval = api.TradingBot.from_body(body("TradingBot", spec)).approval
    assert approval == api.Approval("bob", None, dt.datetime(2026, 11, 25, 21, tzinfo=dt.UTC), None)
    spec["approval"] = {"approvedBy": "bob", "expiresAt": "tomorrow"}
    approval = api.TradingBot.from_body(body("TradingBot", spec)).approval
    assert approval is not None and approval.expires_at is None
    assert approval.invalid is not None and "tomorrow" in approval.invalid


def test_view_dispatches_by_kind_and_refuses_others() -> None:
    assert isinstance(
        api.view(body("IBGateway", {"credentialsSecretRef": {"name": "s"}})), api.IBGateway
    )
    with pytest.raises(api.SpecError, match="kind"):
        api.view(body("Pod", {}))


def test_gateway_ref_is_tolerant_for_indexing() -> None:
    assert api.gateway_ref(body("TradingBot", {"gatewayRef": {"name": "g"}})) == "g"
    assert api.gateway_ref(body("TradingBot", {"gatewayRef": "g"})) == ""
    assert api.gateway_ref({"spec": None}) == ""
