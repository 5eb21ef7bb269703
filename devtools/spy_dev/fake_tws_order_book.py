"""The fake IB Gateway's order book (`spy_dev.fake_tws_orders`): orders parsed from
placeOrder, fills and positions. The wire messages are in `fake_tws_order_wire`, the
behaviour in `fake_tws_orders`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    pass


# fields after whatIf in placeOrder at v169+ (no conditions, no PEG): orderMiscOptions,
# solicited, randomizeSize, randomizePrice, numConditions, 19 adjusted/mifid/... fields,
# duration, postToAts, autoCancelParent, advancedErrorOverride, manualOrderTime
_TAIL_AFTER_WHATIF = 4 + 1 + 19 + 5
_OPEN_STATES = ("PreSubmitted", "Submitted")


@dataclass
class Leg:
    con_id: int
    ratio: int
    action: str
    exchange: str


@dataclass
class FakeOrder:
    """One order as the gateway holds it."""

    order_id: int
    client_id: int
    perm_id: int
    con_id: int
    symbol: str
    sec_type: str
    expiry: str
    strike: str
    right: str
    multiplier: str
    exchange: str
    currency: str
    action: str
    quantity: float
    order_type: str
    lmt_price: str
    tif: str
    account: str
    order_ref: str
    legs: list[Leg]
    what_if: bool
    status: str = "Submitted"
    filled: float = 0.0
    avg_price: float = 0.0
    received_at: float = 0.0  # time.monotonic() when the message arrived
    received_wall: float = 0.0  # time.time() when the message arrived (bench)

    @property
    def is_open(self) -> bool:
        return self.status in _OPEN_STATES

    def contract_fields(self) -> list[object]:
        return [
            self.con_id,
            self.symbol,
            self.sec_type,
            self.expiry,
            self.strike,
            self.right,
            self.multiplier,
            self.exchange,
            self.currency,
            "",  # localSymbol
            "",  # tradingClass
        ]


def parse_place_order(f: list[str], client_id: int) -> FakeOrder:
    """placeOrder fields (ib_async client.placeOrder, v176) -> FakeOrder."""
    # 3, orderId, contract(12: conId symbol secType expiry strike right multiplier
    # exchange primaryExchange currency localSymbol tradingClass), secIdType, secId,
    # action, totalQuantity, orderType, lmtPrice, auxPrice, tif, ocaGroup, account,
    # openClose, origin, orderRef, transmit, parentId, blockOrder, sweepToFill,
    # displaySize, triggerMethod, outsideRth, hidden, [BAG legs...]
    sec_type = f[4]
    legs: list[Leg] = []
    if sec_type == "BAG":
        n = int(f[35] or 0)
        for i in range(n):
            base = 36 + i * 8
            legs.append(Leg(int(f[base]), int(f[base + 1]), f[base + 2], f[base + 3]))
    what_if = f[len(f) - _TAIL_AFTER_WHATIF - 1] == "1"
    now = time.monotonic()
    return FakeOrder(
        order_id=int(f[1]),
        client_id=client_id,
        perm_id=0,
        con_id=int(f[2] or 0),
        symbol=f[3],
        sec_type=sec_type,
        expiry=f[5],
        strike=f[6],
        right=f[7],
        multiplier=f[8],
        exchange=f[9],
        currency=f[11],
        action=f[16],
        quantity=float(f[17] or 0),
        order_type=f[18],
        lmt_price=f[19],
        tif=f[21],
        account=f[23],
        order_ref=f[26],
        legs=legs,
        what_if=what_if,
        received_at=now,
        received_wall=time.time(),
    )


@dataclass
class Fill:
    exec_id: str
    order: FakeOrder
    shares: float
    price: float
    at: datetime


@dataclass
class OrderBook:
    """Orders, fills, positions and P&L held by one FakeTWS (all connections)."""

    fill_mode: str = "auto"  # auto | manual
    reject_next: int = 0
    reject_reason: str = "Order rejected - reason: insufficient buying power"
    commission: float = 1.30  # per contract (per leg for combos)
    init_margin: float = 500.0  # what-if initMarginChange per contract
    next_order_id: int = 1
    orders: dict[int, FakeOrder] = field(default_factory=dict)
    what_ifs: list[FakeOrder] = field(default_factory=list)
    rejected: list[FakeOrder] = field(default_factory=list)
    fills: list[Fill] = field(default_factory=list)
    positions: dict[int, float] = field(default_factory=dict)  # conId -> contracts
    daily_pnl: float = 0.0
    unrealized_pnl: float = 0.0
    realized_pnl: float = 0.0
    _perm: int = 9_000_000

    def placed(self) -> list[FakeOrder]:
        """Orders accepted for execution (not what-ifs, not rejected), oldest first."""
        return sorted(self.orders.values(), key=lambda o: o.received_at)

    def open_orders(self) -> list[FakeOrder]:
        return [o for o in self.placed() if o.is_open]

    def by_ref(self, order_ref: str) -> list[FakeOrder]:
        return [o for o in self.placed() if o.order_ref == order_ref]

    def next_perm(self) -> int:
        self._perm += 1
        return self._perm


# ------------------------------------------------------------------- encoders
