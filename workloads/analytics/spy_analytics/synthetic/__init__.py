"""Deterministic synthetic SPY option market with labelled, injected anomalies.

Who calls this: tests, ``bench/pipeline.py`` and ``bench/detection_quality.py``, and the
detector's synthetic source (``SyntheticMarket(seed).next_snapshot()`` in a loop).
Same seed and same sequence of calls -> identical snapshots (numpy PCG64 streams).

The market (defaults in `SyntheticConfig`):

* listing like SPY's: a daily expiry every weekday for 45 days, Friday weeklies to 120
  days, monthlies (third Friday) and quarter-end expiries to 365 days; $1 strikes near
  the money (wider band for short expiries), $5 and then $10 further out; about 20,000
  contracts at the defaults;
* smiles from SSVI (Gatheral & Jacquier, "Arbitrage-free SVI volatility surfaces",
  2014) - raw-SVI-shaped per expiry, free of butterfly and calendar arbitrage - with an
  upward-sloping ATM term structure; European BSM prices plus the puts' early-exercise
  premium (Barone-Adesi-Whaley, `spy_analytics.american`), floored at the intrinsic
  value and made non-decreasing in maturity per strike (American options). This is the
  fast demo feed; `spy_analytics.synthetic.tape` is the independent yardstick (tree
  prices, discrete dividends, asynchronous quotes) that bench/detection_quality.py uses;
* quotes on a $0.01 tick around the model price with a spread model
  ``0.01 + 0.004 * price * (1 + 0.5 T)`` (x a small random factor), mid noise within a
  quarter of the half-spread; far wings get a zero bid (counted as data quality);
* open interest concentrated near the money and in short expiries; session volume
  arrives as Poisson increments per snapshot (volume/OI stays under 1 on clean data);
* intraday evolution: spot follows a GBM (14% vol) per ``interval_s``; ATM vol moves
  against spot (leverage); a small share of quotes is crossed, locked, stale or NaN;
* injected anomalies (`InjectedAnomaly` labels), one documented magnitude per kind
  (`MAGNITUDES`, docs/analytics.md), on contracts far apart from each other.
"""

from .injection import BREAK_USD, MAGNITUDES, InjectedAnomaly
from .listing import listed_expiries, strike_grid
from .market import SyntheticConfig, SyntheticMarket, SyntheticSnapshot

__all__ = [
    "BREAK_USD",
    "MAGNITUDES",
    "InjectedAnomaly",
    "SyntheticConfig",
    "SyntheticMarket",
    "SyntheticSnapshot",
    "listed_expiries",
    "strike_grid",
]
