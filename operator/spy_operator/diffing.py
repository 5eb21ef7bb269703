"""Does an observed object already carry everything the operator wants? Pure.

A child is left alone (no write) when it still has the hash of the current desired
manifest and every field the operator sets has the value it sets. Anything else
changed the object (a hand `kubectl scale`, an edit) and the child is re-applied.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

_SUFFIX = {
    "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1),
    "k": Decimal("1e3"), "M": Decimal("1e6"), "G": Decimal("1e9"), "T": Decimal("1e12"),
    "P": Decimal("1e15"), "E": Decimal("1e18"),
    "Ki": Decimal(2**10), "Mi": Decimal(2**20), "Gi": Decimal(2**30), "Ti": Decimal(2**40),
    "Pi": Decimal(2**50), "Ei": Decimal(2**60),
}  # fmt: skip
_QUANTITY = re.compile(r"^([+-]?[0-9.]+)([a-zA-Z]{0,2})$")


def quantity(value: Any) -> Decimal | None:
    """'500m' -> 0.5, '1Gi' -> 1073741824; None when not a quantity."""
    match = _QUANTITY.match(str(value))
    if match is None or match.group(2) not in _SUFFIX:
        return None
    try:
        return Decimal(match.group(1)) * _SUFFIX[match.group(2)]
    except InvalidOperation:
        return None


def _scalar_equal(want: Any, have: Any) -> bool:
    if isinstance(want, bool) or isinstance(have, bool):
        return want is have  # True == 1 in Python, not in Kubernetes
    if want == have:
        return True
    # The API server normalises quantities ("1000m" is stored as "1").
    qw, qh = quantity(want), quantity(have)
    return qw is not None and qw == qh


def is_subset(want: Any, have: Any) -> bool:
    if isinstance(want, dict):
        # The API server drops empty lists, maps and (omitempty) strings, so an empty
        # wish is met by absence.
        return isinstance(have, dict) and all(
            is_subset(v, have[k]) if k in have else v in ([], {}, "") for k, v in want.items()
        )
    if isinstance(want, list):
        return (
            isinstance(have, list)
            and len(want) == len(have)
            and all(is_subset(w, h) for w, h in zip(want, have, strict=True))
        )
    return _scalar_equal(want, have)


def status_patch(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any] | None:
    """A merge patch turning status `old` into `new`, or None when they are equal."""
    if old == new:
        return None
    patch: dict[str, Any] = dict(new)
    for key in old:
        if key not in new:
            patch[key] = None
    return patch
