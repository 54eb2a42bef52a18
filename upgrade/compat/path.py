"""Multi-hop upgrade paths: the shortest sequence of single-product upgrades.

A step upgrades one product to a concrete release (never ``2.2.x``) by a supported
direct upgrade (for PKS: the target release's notes name the release it comes
from; for NSX-T and Ops Manager: a hop between series, honouring what the hop
requires of the other products, or a later patch), and the state after every
step must be supported by the matrix (never a withdrawn PKS release).  The
start may be unsupported (that is often why one upgrades).

Ops Manager is kept to one minor version at a time, as the vendor recommends;
only when no such path exists is a path that skips one returned, its skipping
steps carrying a warning.  :func:`find_path` is a breadth-first search, so the
first path it finds is a shortest one; when there is none,
:func:`~upgrade.compat.no_path_reasons.explain_block` names the constraint that blocks.

Pure: no I/O, no clock; the same inputs always give the same path.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import replace

from upgrade.compat.matrix import Matrix
from upgrade.compat.moves import LOOSE, Search, candidates, is_supported, moves
from upgrade.compat.no_path_reasons import explain_block
from upgrade.compat.products import Product
from upgrade.compat.states import Blocked, Goal, PathResult, State, Step
from upgrade.compat.step_reasons import step_explained
from upgrade.core.versions import Version

__all__ = [
    "Blocked",
    "Goal",
    "PathResult",
    "Search",
    "State",
    "Step",
    "candidates",
    "find_path",
    "is_supported",
    "neighbours",
]


def neighbours(
    matrix: Matrix,
    state: State,
    pool: dict[Product, tuple[Version, ...]],
    how: Search = LOOSE,
) -> Iterator[tuple[Product, Version, State]]:
    """Every supported state one valid step away from ``state``."""
    for product, version, after, supported in moves(matrix, state, pool, how):
        if supported:
            yield product, version, after


def find_path(matrix: Matrix, start: State, goal: Goal, strict: bool = False) -> PathResult:
    """The shortest valid path from ``start`` to a state meeting ``goal``.

    ``strict`` takes the conservative reading wherever vendor documents disagree.
    """
    if goal.reached(start):
        return PathResult(start, goal, ())
    first: PathResult | None = None
    skips = (False, True) if matrix.upgrades[Product.OPSMAN].one_minor is not None else (False,)
    for skip in skips:
        loose = _search(matrix, start, goal, Search(strict, skip))
        first = first or loose
        if not loose.found:
            continue
        if strict:
            return loose
        # among the shortest paths, prefer one every vendor document agrees with
        careful = _search(matrix, start, goal, Search(True, skip))
        if careful.steps is not None and len(careful.steps) == len(loose.steps or ()):
            return _relabel(matrix, careful, goal, Search(False, skip))
        return loose
    assert first is not None
    return first


def _relabel(matrix: Matrix, result: PathResult, goal: Goal, how: Search) -> PathResult:
    """``result`` explained under ``how`` (a strict path is also valid when not strict)."""
    steps = list(result.steps or ())
    parent: dict[State, tuple[State, Product, Version] | None] = {result.start: None}
    for i, step in enumerate(steps):
        parent[step.state_after] = (start_of(steps, i), step.product, step.new)
    return replace(result, steps=_unwind(matrix, parent, steps[-1].state_after, goal, how))


def _search(matrix: Matrix, start: State, goal: Goal, how: Search) -> PathResult:
    pool = {p: candidates(matrix, p, goal) for p in Product}
    parent: dict[State, tuple[State, Product, Version] | None] = {start: None}
    queue: deque[State] = deque([start])
    while queue:
        state = queue.popleft()
        for product, version, after in neighbours(matrix, state, pool, how):
            if after in parent:
                continue
            parent[after] = (state, product, version)
            if goal.reached(after):
                return PathResult(start, goal, _unwind(matrix, parent, after, goal, how))
            queue.append(after)
    return PathResult(start, goal, None, explain_block(matrix, start, goal, set(parent), how))


def _unwind(
    matrix: Matrix,
    parent: dict[State, tuple[State, Product, Version] | None],
    end: State,
    goal: Goal,
    how: Search,
) -> tuple[Step, ...]:
    steps: list[Step] = []
    state = end
    while (link := parent[state]) is not None:
        before, product, version = link
        old = before.get(product)
        assert old is not None  # a product without a version is never stepped
        steps.append(Step(product, old, version, state, ""))
        state = before
    steps.reverse()
    out = []
    for i, step in enumerate(steps):
        reason, source, warnings = step_explained(matrix, start_of(steps, i), step, how)
        out.append(
            replace(
                step,
                reason=reason + _purpose(matrix, steps, i, goal, how),
                source=source,
                warnings=warnings,
            )
        )
    return tuple(out)


def start_of(steps: list[Step], index: int) -> State:
    """The state before ``steps[index]``."""
    after = steps[index].state_after
    return after.with_version(steps[index].product, steps[index].old)


def _purpose(matrix: Matrix, steps: list[Step], index: int, goal: Goal, how: Search) -> str:
    """What step ``index`` is for: the target itself, or a later step that needs it."""
    step = steps[index]
    target = goal.get(step.product)
    if target is not None and step.new.within(target):
        return f"; reaches the target {step.product.label} {target}."
    for later in steps[index + 1 :]:
        if later.product is step.product:
            return f"; on the way to {step.product.label} {later.new}."
        without = later.state_after.with_version(step.product, step.old)
        if not is_supported(matrix, without, how.strict):
            return f"; needed before {_short(later)}, as {without.describe()} is not supported."
        before = start_of([later], 0).with_version(step.product, step.old)
        old = before.get(later.product)
        if old is not None and not matrix.allows(
            later.product, old, later.new, before, how.strict, how.skip
        ):
            return f"; needed before {_short(later)}, which requires it."
    return "."


def _short(step: Step) -> str:
    return f"{step.product.label} {step.old} \u2192 {step.new}"
