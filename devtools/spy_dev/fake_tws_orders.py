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

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from spy_dev.fake_tws_order_book import (
    FakeOrder,
    Fill,
    Leg,
    OrderBook,
    parse_place_order,
)
from spy_dev.fake_tws_order_wire import (
    send_exec,
    send_open_order,
    send_order_status,
    send_pnl,
    send_positions,
)

if TYPE_CHECKING:
    from spy_dev.fake_tws import FakeTWS
    from spy_dev.fake_tws_conn import _Conn

__all__ = [
    "FakeOrder",
    "Fill",
    "Leg",
    "OrderBook",
    "cancel",
    "fill",
    "parse_place_order",
    "place",
    "replay_executions",
    "replay_open_orders",
    "send_exec",
    "send_open_order",
    "send_order_status",
    "send_pnl",
    "send_positions",
]


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
