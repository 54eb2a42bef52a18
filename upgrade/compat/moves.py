"""What the matrix allows from a state: supported states, the releases a step may go
to, and every single-product upgrade from one state (the edges the path search walks)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from upgrade.compat.matrix import Matrix, supports
from upgrade.compat.products import Product
from upgrade.compat.states import Goal, State
from upgrade.core.versions import Version

#: the order in which a step's product is tried, which breaks ties between equal-length paths
PRODUCT_ORDER = (Product.PKS, Product.OPSMAN, Product.NSXT)


def is_supported(matrix: Matrix, state: State, strict: bool = False) -> bool:
    """True when the matrix supports ``state`` (a withdrawn PKS release never is)."""
    row = matrix.row_for(state.pks)
    return (
        row is not None
        and row.withdrawn is None
        and supports(row, state.nsxt, state.opsman, strict)
    )


def candidates(matrix: Matrix, product: Product, goal: Goal) -> tuple[Version, ...]:
    """The concrete releases a step may upgrade ``product`` to, ascending (never a
    withdrawn PKS release)."""
    found = list(matrix.releases.get(product, ()))
    if product is Product.PKS:
        found = [v for v in found if (row := matrix.row_for(v)) is not None and not row.withdrawn]
    target = goal.get(product)
    if target is not None and product is not Product.PKS and not any(v == target for v in found):
        found.append(target)
    return tuple(sorted(found))


@dataclass(frozen=True, slots=True)
class Search:
    """How a search reads the rules: ``strict`` takes the conservative reading where vendor
    documents disagree; ``skip`` lets Ops Manager skip a minor version (with a warning)."""

    strict: bool = False
    skip: bool = False


#: the default reading: the release notes decide, Ops Manager keeps to one minor at a time
LOOSE = Search()


def moves(
    matrix: Matrix,
    state: State,
    pool: dict[Product, tuple[Version, ...]],
    how: Search = LOOSE,
) -> Iterator[tuple[Product, Version, State, bool]]:
    """Every single-product upgrade the upgrade rules allow from ``state``, with the state
    after it and whether the matrix supports that state."""
    for product in PRODUCT_ORDER:
        current = state.get(product)
        if current is None:
            continue
        for version in pool[product]:
            if version > current and matrix.allows(
                product, current, version, state, how.strict, how.skip
            ):
                after = state.with_version(product, version)
                yield product, version, after, is_supported(matrix, after, how.strict)
