"""Market data and contract details for the fake IB Gateway (``spy_dev.fake_tws``).

Called by ``fake_tws_conn._Conn`` for reqContractDetails (9 -> contractDetails 10 +
contractDetailsEnd 52, or error 200), reqSecDefOptParams (78 -> 75 + 76), reqMktData
(1 -> tickPrice 1, tickSize 2, tickOptionComputation 21; 58 when delayed, 57 after a
snapshot, error 101 over ``max_lines``) and cancelMktData (2), with the field layouts
of ib_async's decoder at server version 176. Quotes come from the server's FakeChain.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from spy_dev.fake_tws_chain import UNDERLYING_CONID, FakeChain

if TYPE_CHECKING:
    from spy_dev.fake_tws_conn import _Conn


@dataclass
class Sub:
    """One reqMktData subscription (a market data line)."""

    req_id: int
    con_id: int
    sec_type: str
    expiry: str
    strike: float
    right: str
    generic: str


def contract_fields(f: list[str], start: int) -> tuple[int, str, str, str, float, str]:
    con_id = int(f[start] or 0)
    symbol, sec_type, expiry = f[start + 1], f[start + 2], f[start + 3]
    strike = float(f[start + 4] or 0)
    right = f[start + 5]
    return con_id, symbol, sec_type, expiry, strike, right


def req_contract_details(conn: _Conn, f: list[str]) -> None:
    # 9, version 8, reqId, contract(12), includeExpired, secIdType, secId, issuerId
    req_id = int(f[2])
    _con_id, symbol, sec_type, expiry, strike, right = contract_fields(f, 3)
    chain = conn.server.chain
    if symbol != chain.symbol:
        conn.error(req_id, 200, "No security definition has been found for the request")
        return
    if sec_type == "STK":
        send_details(
            conn,
            req_id,
            chain.symbol,
            "STK",
            "",
            0.0,
            "",
            UNDERLYING_CONID,
            "SPDR S&P 500 ETF TRUST",
            "ARCA",
        )
    else:
        matches = _option_matches(chain, expiry, strike, right)
        if not matches:
            conn.error(req_id, 200, "No security definition has been found for the request")
            return
        for e, k, r, cid in matches:
            send_details(
                conn,
                req_id,
                chain.symbol,
                "OPT",
                e,
                k,
                r,
                cid,
                "SPDR S&P 500 ETF TRUST",
                "",
                multiplier="100",
            )
    conn.send(52, 1, req_id)


def _option_matches(
    chain: FakeChain, expiry: str, strike: float, right: str
) -> list[tuple[str, float, str, int]]:
    """(expiry, strike, right, con id) of the listed options a request names."""
    # Unset fields are wildcards, as at the real gateway: an option with only
    # symbol + expiry returns every strike and right of that expiry.
    full = expiry and strike and right  # one contract: no scan of a big chain
    exact = chain.con_id(expiry, strike, right) if full else None
    if exact is not None:
        return [(expiry, strike, right, exact)]
    if full:
        return []
    return [
        (e, k, r, cid)
        for e in chain.expiries
        for k in chain.strikes
        for r in ("C", "P")
        if (not expiry or e == expiry)
        and (not strike or k == strike)
        and (not right or r == right)
        and (cid := chain.con_id(e, k, r)) is not None
    ]


def send_details(
    conn: _Conn,
    req_id: int,
    symbol: str,
    sec_type: str,
    expiry: str,
    strike: float,
    right: str,
    con_id: int,
    long_name: str,
    primary: str,
    multiplier: str = "",
) -> None:
    """contractDetails (10) for one contract.

    Long on purpose (issue 7): one call, one field per line, because the order of the
    fields is the protocol (ib_async's decoder at v176) and this is the place to read it.
    """
    local = (
        symbol if sec_type == "STK" else f"{symbol}  {expiry[2:]}{right}{int(strike * 1000):08d}"
    )
    last_times = f"{expiry} 16:00 US/Eastern" if expiry else ""
    conn.send(
        10,
        req_id,
        symbol,
        sec_type,
        last_times,  # lastTradeDateOrContractMonth (with time and zone)
        strike if strike else "",
        right,
        "SMART",  # exchange
        "USD",  # currency
        local,  # localSymbol
        symbol,  # marketName
        symbol,  # tradingClass
        con_id,
        0.01,  # minTick
        multiplier,
        "ACTIVETIM,LMT,MKT",  # orderTypes
        "SMART,AMEX,CBOE",  # validExchanges
        1,  # priceMagnifier
        UNDERLYING_CONID if sec_type == "OPT" else 0,  # underConId
        long_name,
        primary,  # primaryExchange
        expiry[:6],  # contractMonth
        "",  # industry
        "",  # category
        "",  # subcategory
        "US/Eastern",  # timeZoneId
        "",  # tradingHours
        "",  # liquidHours
        "",  # evRule
        "",  # evMultiplier
        0,  # numSecIds
        1,  # aggGroup
        symbol if sec_type == "OPT" else "",  # underSymbol
        "STK" if sec_type == "OPT" else "",  # underSecType
        "26",  # marketRuleIds
        expiry,  # realExpirationDate
        "",  # stockType
        1,  # minSize
        1,  # sizeIncrement
        1,  # suggestedSizeIncrement
    )


def req_sec_def_opt_params(conn: _Conn, f: list[str]) -> None:
    # 78, reqId, underlyingSymbol, futFopExchange, underlyingSecType, underlyingConId
    req_id = int(f[1])
    chain = conn.server.chain
    exps = chain.expiries
    for exchange in ("SMART", "CBOE"):
        conn.send(
            75,
            req_id,
            exchange,
            UNDERLYING_CONID,
            chain.symbol,
            100,
            len(exps),
            *exps,
            len(chain.strikes),
            *chain.strikes,
        )
    conn.send(76, req_id)


def req_mkt_data(conn: _Conn, f: list[str]) -> None:
    # 1, version 11, reqId, contract(12), deltaNeutral flag, genericTicks, snapshot, ...
    req_id = int(f[2])
    con_id, _symbol, sec_type, expiry, strike, right = contract_fields(f, 3)
    generic = f[16] if len(f) > 16 else ""
    snapshot = len(f) > 17 and f[17] == "1"
    if snapshot:  # one round of ticks, then tickSnapshotEnd; holds no line
        send_ticks(conn, Sub(req_id, con_id, sec_type, expiry, strike, right, generic), 0)
        conn.send(57, 1, req_id)
        return
    if len(conn.subs) >= conn.server.max_lines:
        conn.server.line_violations += 1
        conn.error(req_id, 101, "Max number of tickers has been reached")
        return
    sub = Sub(req_id, con_id, sec_type, expiry, strike, right, generic)
    conn.subs[req_id] = sub
    conn.server.peak_lines = max(conn.server.peak_lines, len(conn.subs))
    conn.server.subscribed.append((conn.client_id, con_id))
    if conn.md_type != 1:
        conn.send(58, 1, req_id, conn.md_type)
    send_ticks(conn, sub, bump=0)


def cancel_mkt_data(conn: _Conn, f: list[str]) -> None:
    conn.subs.pop(int(f[2]), None)


def send_ticks(conn: _Conn, sub: Sub, bump: int) -> None:
    delayed = conn.md_type in (3, 4)
    bid_t, ask_t, last_t = (66, 67, 68) if delayed else (1, 2, 4)
    vol_t, model_t = (74, 83) if delayed else (8, 13)
    chain = conn.server.chain
    if sub.sec_type == "STK":
        s = chain.spot + 0.01 * bump
        conn.send(1, 6, sub.req_id, bid_t, round(s - 0.01, 2), 300, 0)
        conn.send(1, 6, sub.req_id, ask_t, round(s + 0.01, 2), 200, 0)
        conn.send(1, 6, sub.req_id, last_t, round(s, 2), 100, 0)
        conn.send(1, 6, sub.req_id, 9, chain.spot, 0, 0)  # close
        return
    bid, ask = chain.quote(sub.expiry, sub.strike, sub.right, bump)
    if ask < chain.empty_bid_below:
        conn.send(1, 6, sub.req_id, bid_t, -1, 0, 0)
    else:
        conn.send(1, 6, sub.req_id, bid_t, bid, 10, 0)
    conn.send(1, 6, sub.req_id, ask_t, ask, 12, 0)
    conn.send(1, 6, sub.req_id, last_t, round((bid + ask) / 2, 2), 1, 0)
    conn.send(2, 6, sub.req_id, vol_t, 150 + bump)
    if "101" in sub.generic.split(","):
        conn.send(2, 6, sub.req_id, 27 if sub.right == "C" else 28, 1200)
    # tickOptionComputation without version field (server >= 156):
    # reqId, tickType, tickAttrib, iv, delta, optPrice, pvDividend, gamma, vega, theta, undPrice
    delta = 0.5 if sub.right == "C" else -0.5
    conn.send(
        21,
        sub.req_id,
        model_t,
        1,
        0.18,
        delta,
        (bid + ask) / 2,
        0.0,
        0.01,
        0.2,
        -0.05,
        chain.spot,
    )
