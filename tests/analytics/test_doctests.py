"""The docstring examples of the analytics kernels run in ``make test``.

bsm.py and iv.py carry textbook values (Hull ex. 15.6) as doctests; pytest does not
collect doctests unless asked (and pyproject's pytest options are shared), so this
test runs them and fails on any failing example, or when a module has lost them.
"""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = (
    "spy_analytics.bsm",
    "spy_analytics.iv",
    "spy_analytics.dividends",
    "spy_analytics.nyse_calendar",
)


@pytest.mark.parametrize("name", MODULES)
def test_module_doctests_pass(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.attempted > 0, f"{name} has no doctest examples"
    assert result.failed == 0, f"{result.failed} doctest example(s) of {name} failed"
