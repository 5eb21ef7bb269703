"""The order messages the fake IB Gateway writes (openOrder, orderStatus, execDetails +
commissionReport, position, pnl) in the field layouts of ib_async's decoder at server
version 176. Called by `spy_dev.fake_tws_orders`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from spy_dev.fake_tws_conn import _Conn

from spy_dev.fake_tws_order_book import FakeOrder, Fill


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
