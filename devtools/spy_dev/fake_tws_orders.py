"""The order side of the fake IB Gateway (`spy_dev.fake_tws`): an order book that speaks
the real TWS wire messages to the real ib_async client, for the bot's tests and bench.

Called by ``fake_tws_conn._Conn`` for the client messages placeOrder (3), cancelOrder (4),
reqOpenOrders (5), reqExecutions (7), reqIds (8), reqGlobalCancel (58), reqPositions
(61) and reqPnL/cancelPnL (92/93). It answers, at server version 176 with the field
layouts of ib_async's decoder:

* what-if (placeOrder with whatIf=1) -> openOrder (5) with whatIf=1 and the margin and
  commission preview in its OrderState; nothing is stored;
* a placed order -> openOrder (status Submitted) + orderStatus (3) Submitted; then,
  by ``fill_mode``: ``auto`` fills at once (execDetails 11, commissionReport 59,
  orderStatus Filled), ``manual`` leaves it working until ``fill()``; ``reject_next``
  rejects the next N orders with error 201 (ib_async cancels the trade);
* cancelOrder / reqGlobalCancel -> orderStatus Cancelled (error 202 like the gateway);
* reqOpenOrders after a reconnect replays the client's working orders, reqExecutions its
  fills (with their orderRef), reqIds / nextValidId never reuse an order id, so a client
  that reconnects mid-order sees its order again, as with the real gateway;
* positions from the fills: reqPositions (61) answers 61... 62 and subscribes the
  connection to updates after later fills, like the real gateway; reqPnL -> pnl (94),
  and ``set_pnl()`` pushes a new daily P&L to every subscriber.

placeOrder is parsed from the front for the fields up to the combo legs and from the
back for ``whatIf`` (the tail after it has a fixed length at v176 without order
conditions or PEG orders, which the bot never sends).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from spy_dev.fake_tws import FakeTWS
    from spy_dev.fake_tws_conn import _Conn

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


def send_open_order(conn: _Conn, o: FakeOrder, status: str, what_if: bool = False) -> None:
    """openOrder (5), or a what-if preview with its OrderState.

    Long on purpose (issue 7): the message is one flat list of ~120 fields whose order
    is the protocol (ib_async's decoder at v176), kept as one call with each field named
    where it stands; split into pieces, that order could no longer be read in one place.
    """
    book = conn.server.book
    margin = book.init_margin * o.quantity
    commission = book.commission * o.quantity * max(1, len(o.legs))
    preview = (
        ["", "", "", margin, margin * 0.8, -margin, margin, margin * 0.8, 1e6 - margin]
        if what_if
        else [""] * 9
    )
    legs: list[object] = [len(o.legs)]
    for leg in o.legs:
        legs += [leg.con_id, leg.ratio, leg.action, leg.exchange, 0, 0, "", -1]
    conn.send(
        5,
        o.order_id,
        *o.contract_fields(),
        o.action,
        o.quantity,
        o.order_type,
        o.lmt_price,
        "",  # auxPrice
        o.tif,
        "",  # ocaGroup
        o.account,
        "O",  # openClose
        0,  # origin
        o.order_ref,
        o.client_id,
        o.perm_id,
        0,  # outsideRth
        0,  # hidden
        0,  # discretionaryAmt
        "",  # goodAfterTime
        "",  # sharesAllocation (skipped by the decoder)
        "",  # faGroup
        "",  # faMethod
        "",  # faPercentage
        "",  # faProfile (server < 177)
        "",  # modelCode
        "",  # goodTillDate
        "",  # rule80A
        "",  # percentOffset
        "",  # settlingFirm
        0,  # shortSaleSlot
        "",  # designatedLocation
        -1,  # exemptCode
        0,  # auctionStrategy
        "",  # startingPrice
        "",  # stockRefPrice
        "",  # delta
        "",  # stockRangeLower
        "",  # stockRangeUpper
        "",  # displaySize
        0,  # blockOrder
        0,  # sweepToFill
        0,  # allOrNone
        "",  # minQty
        3,  # ocaType
        0,  # eTradeOnly
        0,  # firmQuoteOnly
        "",  # nbboPriceCap
        0,  # parentId
        0,  # triggerMethod
        "",  # volatility
        0,  # volatilityType
        "",  # deltaNeutralOrderType (empty: no delta-neutral block)
        "",  # deltaNeutralAuxPrice
        0,  # continuousUpdate
        0,  # referencePriceType
        "",  # trailStopPrice
        "",  # trailingPercent
        "",  # basisPoints
        "",  # basisPointsType
        "",  # comboLegsDescrip
        *legs,
        0,  # numOrderLegs
        0,  # smartComboRoutingParams
        "",  # scaleInitLevelSize
        "",  # scaleSubsLevelSize
        "",  # scalePriceIncrement (unset: no scale block)
        "",  # hedgeType
        0,  # optOutSmartRouting
        "",  # clearingAccount
        "",  # clearingIntent
        0,  # notHeld
        0,  # deltaNeutralContract present
        "",  # algoStrategy
        0,  # solicited
        1 if what_if else 0,
        status,
        *preview,
        commission if what_if else "",
        "",  # minCommission
        "",  # maxCommission
        "USD" if what_if else "",
        "",  # warningText
        0,  # randomizeSize
        0,  # randomizePrice
        0,  # numConditions
        "",  # adjustedOrderType
        "",  # triggerPrice
        "",  # trailStopPrice
        "",  # lmtPriceOffset
        "",  # adjustedStopPrice
        "",  # adjustedStopLimitPrice
        "",  # adjustedTrailingAmount
        0,  # adjustableTrailingUnit
        "",  # softDollarTier name
        "",  # softDollarTier value
        "",  # softDollarTier displayName
        "",  # cashQty
        0,  # dontUseAutoPriceForHedge
        0,  # isOmsContainer
        0,  # discretionaryUpToLimitPrice
        0,  # usePriceMgmtAlgo
        "",  # duration (>= 159)
        0,  # postToAts (>= 160)
        0,  # autoCancelParent (>= 162)
        "",  # minTradeQty (>= 170)
        "",  # minCompeteSize
        "",  # competeAgainstBestOffset
        "",  # midOffsetAtWhole
        "",  # midOffsetAtHalf
    )


def send_order_status(conn: _Conn, o: FakeOrder) -> None:
    remaining = o.quantity - o.filled if o.status not in ("Cancelled", "Inactive") else 0
    conn.send(
        3,
        o.order_id,
        o.status,
        o.filled,
        remaining,
        o.avg_price,
        o.perm_id,
        0,  # parentId
        o.avg_price,
        o.client_id,
        "",  # whyHeld
        0,  # mktCapPrice
    )


def send_exec(conn: _Conn, fill: Fill, req_id: int = -1) -> None:
    o = fill.order
    conn.send(
        11,
        req_id,
        o.order_id,
        *o.contract_fields()[:7],
        o.exchange,
        o.currency,
        "",  # localSymbol
        "",  # tradingClass
        fill.exec_id,
        fill.at.strftime("%Y%m%d %H:%M:%S UTC"),
        o.account,
        "CBOE",
        "BOT" if o.action == "BUY" else "SLD",
        fill.shares,
        fill.price,
        o.perm_id,
        o.client_id,
        0,  # liquidation
        fill.shares,  # cumQty
        fill.price,  # avgPrice
        o.order_ref,
        "",  # evRule
        "",  # evMultiplier
        "",  # modelCode
        0,  # lastLiquidity
    )
    book = conn.server.book
    conn.send(
        59,
        1,
        fill.exec_id,
        round(book.commission * fill.shares * max(1, len(o.legs)), 2),
        "USD",
        "",  # realizedPNL (unset)
        "",  # yield
        "",  # yieldRedemptionDate
    )


# ------------------------------------------------------------------ behaviour


def place(conn: _Conn, f: list[str]) -> None:
    server: FakeTWS = conn.server
    book = server.book
    order = parse_place_order(f, conn.client_id or 0)
    book.next_order_id = max(book.next_order_id, order.order_id + 1)
    if order.what_if:
        book.what_ifs.append(order)
        send_open_order(conn, order, "PreSubmitted", what_if=True)
        return
    for hook in list(server.on_order):
        hook(order)
    if order.order_id in book.orders:
        conn.error(order.order_id, 103, "Duplicate order id")
        return
    if book.reject_next > 0:
        book.reject_next -= 1
        book.rejected.append(order)
        conn.error(order.order_id, 201, book.reject_reason)
        return
    order.perm_id = book.next_perm()
    book.orders[order.order_id] = order
    send_open_order(conn, order, "Submitted")
    send_order_status(conn, order)
    if book.fill_mode == "auto":
        fill(server, order.order_id)


def fill(server: FakeTWS, order_id: int, price: float | None = None) -> None:
    """Fill a working order completely (at its limit price unless told otherwise)."""
    book = server.book
    o = book.orders[order_id]
    if not o.is_open:
        return
    px = price if price is not None else float(o.lmt_price or 0)
    o.filled, o.avg_price, o.status = o.quantity, px, "Filled"
    sign = 1 if o.action == "BUY" else -1
    if o.legs:
        for leg in o.legs:
            leg_sign = sign * (1 if leg.action == "BUY" else -1)
            book.positions[leg.con_id] = book.positions.get(leg.con_id, 0) + (
                leg_sign * leg.ratio * o.quantity
            )
    else:
        book.positions[o.con_id] = book.positions.get(o.con_id, 0) + sign * o.quantity
    f = Fill(f"0001f4e8.{o.perm_id}.01.01", o, o.quantity, px, datetime.now(UTC))
    book.fills.append(f)
    conn = server.conn_of(o.client_id)
    if conn is not None:
        send_exec(conn, f)
        send_order_status(conn, o)
    changed = {leg.con_id for leg in o.legs} or {o.con_id}
    for c in server.position_subscribers():
        send_positions(c, only=changed)


def cancel(server: FakeTWS, order_id: int) -> bool:
    o = server.book.orders.get(order_id)
    if o is None or not o.is_open:
        return False
    o.status = "Cancelled"
    conn = server.conn_of(o.client_id)
    if conn is not None:
        send_order_status(conn, o)
        conn.error(order_id, 202, "Order Canceled - reason:")
    return True


def replay_open_orders(conn: _Conn) -> None:
    for o in conn.server.book.open_orders():
        if o.client_id == conn.client_id:
            send_open_order(conn, o, o.status)
            send_order_status(conn, o)
    conn.send(53, 1)


def replay_executions(conn: _Conn, req_id: int) -> None:
    for f in conn.server.book.fills:
        if f.order.client_id == conn.client_id:
            send_exec(conn, f, req_id)
    conn.send(55, 1, req_id)


def send_positions(conn: _Conn, only: set[int] | None = None) -> None:
    """Positions (61) then positionEnd (62); ``only`` = updates after a fill, no end.

    reqPositions subscribes, as at the real gateway: later fills push updates.
    """
    server = conn.server
    conn.positions_subscribed = True
    account = server.accounts[0]
    for con_id, qty in sorted(server.book.positions.items()):
        found = server.chain.describe(con_id)
        if found is None or (only is not None and con_id not in only):
            continue
        expiry, strike, right = found
        conn.send(
            61, 3, account, con_id, server.chain.symbol, "OPT", expiry, strike, right, "100",
            "", "USD", "", server.chain.symbol, qty, 100.0,
        )  # fmt: skip
    if only is None:
        conn.send(62, 1)


def send_pnl(conn: _Conn, req_id: int) -> None:
    book = conn.server.book
    conn.send(94, req_id, book.daily_pnl, book.unrealized_pnl, book.realized_pnl)
