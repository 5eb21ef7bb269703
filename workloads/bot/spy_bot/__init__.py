"""spy_bot: the paper-by-default trading bot behind the TradingBot safety gate.

``python -m spy_bot run`` (``process.run_bot``). Decisions are pure modules
(``strategy``, ``risk``, ``arming``); I/O sits at the edges (``feed``, ``broker``,
``kube``, ``audit``, ``health``). docs/bot.md documents the strategy schema, every risk
limit and the audit format.
"""
