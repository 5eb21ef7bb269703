"""Discovery of one shard's option contracts on the gateway: option parameters of the
underlying, the expiries in the DTE window that belong to this shard, then one
contract-details request per expiry.

Who calls this: `spy_detector.sources.ibkr.IBKRSource` on each (re)connect and each
new day; every request goes through its `request` (a timeout) and the client's
throttle.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from ib_async import IB, Contract, Option

from spy_detector.sharding import ShardSpec, context_expiries, select_expiries
from spy_detector.sources.ibkr_chain import expiries_in_window, strikes_in_window
from spy_detector.sources.ibkr_settings import IBSettings

log = logging.getLogger("spy_detector.sources.ibkr")


async def discover(
    ib: IB,
    s: IBSettings,
    shard: ShardSpec,
    underlying: Contract,
    spot: float,
    clock: Callable[[], datetime],
    request: Callable[[Awaitable[Any]], Awaitable[Any]],
) -> tuple[list[Contract], frozenset[str]]:
    """The listed contracts of this shard's expiries with strikes within
    ``strike_range`` of ``spot``, by expiry, strike and right, plus the shard's
    read-only context expiries (YYYY-MM-DD) whose contracts are among them."""
    chains = await request(
        ib.reqSecDefOptParamsAsync(s.symbol, "", underlying.secType, underlying.conId)
    )
    if not chains:
        raise ConnectionError("no option parameters for the underlying")
    chain = next(
        (c for c in chains if c.exchange == s.exchange and c.tradingClass == s.symbol),
        chains[0],
    )
    window = expiries_in_window(chain.expirations, clock().date(), s.dte_min, s.dte_max)
    mine = select_expiries(window, shard)
    # the expiry after each of ours, read-only, so calendars across shards are checked
    context = context_expiries(window, shard)
    strikes = set(strikes_in_window(chain.strikes, spot, s.strike_range))
    # One contract-details request per expiry (strike and right left open) returns
    # every listed contract of it, fully qualified: a handful of messages instead
    # of one qualifyContracts request per strike and right, which at 40 msg/s
    # would take minutes for a 60-day SPY window. Strikes that secdef lists but the
    # expiry does not have simply do not come back.
    contracts: list[Contract] = []
    for expiry in sorted({*mine, *context}):
        pattern = Option(
            s.symbol,
            expiry,
            exchange=s.exchange,
            currency=s.currency,
            tradingClass=chain.tradingClass,
        )
        details = await request(ib.reqContractDetailsAsync(pattern))
        listed = [d.contract for d in details if d.contract is not None]
        for c in sorted(listed, key=lambda c: (c.strike, c.right)):
            if c.strike in strikes and c.right in ("C", "P") and c.conId:
                c.exchange = s.exchange  # details may name a venue; route SMART
                contracts.append(c)
    log.info(
        "chain window",
        extra={
            "expiries": len(mine),
            "context_expiries": len(context),
            "of_window": len(window),
            "strikes": len(strikes),
            "contracts": len(contracts),
            "shard": f"{shard.index}/{shard.count}",
        },
    )
    return contracts, frozenset(f"{e[:4]}-{e[4:6]}-{e[6:8]}" for e in context)
