"""Property filters of a query (pure): which go into the service's $filter, which are
applied to the rows read, within the service's limit of comparisons per $filter.

Called by `reads` for every query page.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

FILTER_MAX_COMPARISONS = 15  # service limit per $filter
KEY_COMPARISONS = 3  # PartitionKey eq, RowKey lower bound, RowKey upper bound


@dataclass(frozen=True)
class EqualsFilter:
    """Property filters of a query: in the $filter where they fit, else applied here.

    `text` is appended to the key comparisons with `params` as its parameters;
    `client_side` holds the properties left out of the $filter (tested on each row read).
    """

    text: str = ""
    params: dict[str, str] = field(default_factory=dict)
    client_side: dict[str, frozenset[str]] = field(default_factory=dict)
    comparisons: int = KEY_COMPARISONS

    def matches(self, entity: Mapping[str, Any]) -> bool:
        return all(entity.get(prop) in values for prop, values in self.client_side.items())


def build_equals_filter(equals: Mapping[str, Iterable[str]] | None) -> EqualsFilter:
    """OR within a property, AND across; at most FILTER_MAX_COMPARISONS in the $filter.

    Values are de-duplicated. While the key comparisons plus one per value exceed the
    service limit, the property with the most values (ties: by name) is filtered here
    instead: the answer is the same, the service just returns more rows to discard.
    """
    wanted = {prop: list(dict.fromkeys(values)) for prop, values in (equals or {}).items()}
    wanted = {prop: values for prop, values in wanted.items() if values}
    client_side: dict[str, frozenset[str]] = {}
    by_size = sorted(wanted, key=lambda prop: (-len(wanted[prop]), prop))
    while KEY_COMPARISONS + sum(len(v) for v in wanted.values()) > FILTER_MAX_COMPARISONS:
        prop = by_size.pop(0)
        client_side[prop] = frozenset(wanted.pop(prop))
    text, params = "", dict[str, str]()
    for i, (prop, values) in enumerate(sorted(wanted.items())):
        names = [f"p{i}_{j}" for j in range(len(values))]
        params.update(zip(names, values, strict=True))
        # The SDK substitutes `@name` only between spaces, hence "( ... )".
        text += " and ( " + " or ".join(f"{prop} eq @{n}" for n in names) + " )"
    comparisons = KEY_COMPARISONS + sum(len(v) for v in wanted.values())
    return EqualsFilter(text, params, client_side, comparisons)
