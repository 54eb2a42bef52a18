"""Why no upgrade path exists: the upgrade route, the target, or the states in between."""

from __future__ import annotations

from collections.abc import Iterator

from upgrade.compat.matrix import Matrix
from upgrade.compat.moves import LOOSE, Search, candidates, is_supported, moves
from upgrade.compat.products import Product
from upgrade.compat.states import Blocked, Goal, State
from upgrade.core.versions import Version


def explain_block(
    matrix: Matrix, start: State, goal: Goal, reached: set[State], how: Search = LOOSE
) -> Blocked:
    """Name the constraint that stops every path from ``start`` to ``goal``."""
    pool = {p: candidates(matrix, p, goal) for p in Product}
    wanted = matrix.row_for(goal.pks) if goal.pks is not None else None
    withdrawn = wanted is not None and wanted.withdrawn is not None
    if withdrawn and goal.pks is not None and not any(
        v.within(goal.pks) for v in pool[Product.PKS]
    ):
        return Blocked("target", _target_reason(matrix, goal))
    reachable: dict[Product, list[Version]] = {}
    for product in Product:
        current = start.get(product)
        target = goal.get(product)
        if current is None:
            if target is not None:
                return Blocked("input", f"no {product.label} version given to start from")
            continue
        reachable[product] = _route_closure(matrix, product, current, pool[product], how)
        if target is not None and not any(v.within(target) for v in reachable[product]):
            return Blocked("upgrade-route", _route_reason(matrix, product, current, target))
    combos = [
        State(p, n, o)
        for p in reachable[Product.PKS]
        for n in reachable[Product.NSXT]
        for o in reachable.get(Product.OPSMAN, [None])
    ]
    if not any(goal.reached(s) and is_supported(matrix, s, how.strict) for s in combos):
        return Blocked("target", _target_reason(matrix, goal))
    supported = [s for s in reached if is_supported(matrix, s, how.strict)]
    best = max(supported or [start], key=lambda s: _closeness(goal, s))
    where = (
        f"the closest supported state reachable is {best.describe()}"
        if supported
        else f"no supported state is one step from {start.describe()}"
    )
    moves: list[str] = []
    seen: set[tuple[Product, str]] = set()
    for product, version, after in _refused_moves(matrix, best, pool, how):
        why = why_unsupported(matrix, after)
        key = (product, why.partition(" needs ")[2] or why)
        if key not in seen and sum(1 for p, _ in seen if p is product) < 2:
            seen.add(key)
            moves.append(f"{product.label} \u2192 {version} is refused ({why})")
    tail = f"; from there {'; '.join(moves)}" if moves else ""
    return Blocked(
        "intermediate",
        f"every route to {goal.describe()} passes through a combination the matrix does not "
        f"support; {where}{tail}",
    )


def _refused_moves(
    matrix: Matrix, state: State, pool: dict[Product, tuple[Version, ...]], how: Search
) -> Iterator[tuple[Product, Version, State]]:
    """Upgrades allowed by the upgrade rules whose result the matrix does not support."""
    for product, version, after, supported in moves(matrix, state, pool, how):
        if not supported:
            yield product, version, after


def why_unsupported(matrix: Matrix, state: State) -> str:
    """What the matrix requires that ``state`` lacks, in a few words."""
    row = matrix.row_for(state.pks)
    if row is None:
        return f"the matrix has no row for PKS {state.pks}"
    if row.withdrawn is not None:
        return f"PKS {state.pks} was withdrawn: {row.withdrawn!r}"
    needs = []
    if not row.nsxt.contains(state.nsxt):
        needs.append(f"NSX-T {row.nsxt.describe()}")
    if state.opsman is not None and not row.opsman.contains(state.opsman):
        needs.append(f"Ops Manager {row.opsman.describe()}")
    if not needs:
        return f"PKS {state.pks} supports it"
    return f"PKS {state.pks} needs {' and '.join(needs)}"


def _route_closure(
    matrix: Matrix, product: Product, start: Version, pool: tuple[Version, ...], how: Search
) -> list[Version]:
    """Every version of ``product`` reachable by upgrades alone, ignoring the matrix (and
    what a hop requires of the other products)."""
    seen = [start]
    frontier = [start]
    while frontier:
        current = frontier.pop()
        for version in pool:
            allowed = matrix.allows(product, current, version, None, how.strict, how.skip)
            if allowed and not any(version == s for s in seen):
                seen.append(version)
                frontier.append(version)
    return seen


def _route_reason(matrix: Matrix, product: Product, current: Version, target: Version) -> str:
    title = product.label
    if not current < target and not current.within(target):
        return f"{title} cannot be downgraded from {current} to {target}"
    if product is Product.PKS:
        onward = [
            r.pks_text
            for r in reversed(matrix.rows)
            if r.pks > current and r.withdrawn is None and r.accepts("upgrade_from", current)
        ]
    else:
        rules = matrix.upgrades[product]
        onward = [h.describe() for h in rules.hops if h.source_spec.contains(current)]
    hops = ", ".join(onward) if onward else "none"
    return (
        f"no chain of supported {title} upgrades leads from {current} to {target} "
        f"(direct upgrades from {current}: {hops})"
    )


def _target_reason(matrix: Matrix, goal: Goal) -> str:
    text = f"no supported combination matches {goal.describe()}"
    if goal.pks is not None and (row := matrix.row_for(goal.pks)) is not None:
        if row.withdrawn is not None:
            where = row.withdrawn_source.render() if row.withdrawn_source else ""
            return f"{text}: PKS {goal.pks} was withdrawn: {row.withdrawn!r} ({where})"
        text += (
            f": PKS {goal.pks} needs NSX-T {row.nsxt.describe()} "
            f"and Ops Manager {row.opsman.describe()}"
        )
    return text


def _closeness(goal: Goal, state: State) -> tuple[int, tuple[int, ...]]:
    met = sum(
        1
        for p in Product
        if (want := goal.get(p)) is not None
        and (have := state.get(p)) is not None
        and have.within(want)
    )
    return met, state.nsxt.padded(4) + state.pks.padded(3)
