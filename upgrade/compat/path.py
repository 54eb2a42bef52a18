"""Multi-hop upgrade paths: the shortest sequence of single-product upgrades.

A step upgrades one product to a concrete release (never ``2.2.x``) by a supported
direct upgrade (a hop between series, or a later patch of the same series), and
the state after every step must be supported by the matrix.  The start may be
unsupported (that is often why one upgrades).  :func:`find_path` is a
breadth-first search, so the first path it finds is a shortest one; when there
is none, :func:`~upgrade.compat.explain.explain_block` names the constraint that
blocks.

Pure: no I/O, no clock; the same inputs always give the same path.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import replace

from upgrade.compat.explain import explain_block
from upgrade.compat.matrix import Matrix, Product
from upgrade.compat.states import (
    Blocked,
    Goal,
    PathResult,
    State,
    Step,
    candidates,
    is_supported,
    moves,
)
from upgrade.versions import Version

__all__ = [
    "Blocked",
    "Goal",
    "PathResult",
    "State",
    "Step",
    "candidates",
    "find_path",
    "is_supported",
    "neighbours",
    "step_reason",
]


def neighbours(
    matrix: Matrix, state: State, pool: dict[Product, tuple[Version, ...]]
) -> Iterator[tuple[Product, Version, State]]:
    """Every supported state one valid step away from ``state``."""
    for product, version, after, supported in moves(matrix, state, pool):
        if supported:
            yield product, version, after


def find_path(matrix: Matrix, start: State, goal: Goal) -> PathResult:
    """The shortest valid path from ``start`` to a state meeting ``goal``."""
    if goal.reached(start):
        return PathResult(start, goal, ())
    pool = {p: candidates(matrix, p, goal) for p in Product}
    parent: dict[State, tuple[State, Product, Version] | None] = {start: None}
    queue: deque[State] = deque([start])
    while queue:
        state = queue.popleft()
        for product, version, after in neighbours(matrix, state, pool):
            if after in parent:
                continue
            parent[after] = (state, product, version)
            if goal.reached(after):
                return PathResult(start, goal, _unwind(matrix, parent, after, goal))
            queue.append(after)
    return PathResult(start, goal, None, explain_block(matrix, start, goal, set(parent)))


def _unwind(
    matrix: Matrix,
    parent: dict[State, tuple[State, Product, Version] | None],
    end: State,
    goal: Goal,
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
    befores = [start_of(steps, i) for i in range(len(steps))]
    return tuple(
        replace(
            step,
            reason=step_reason(matrix, befores[i], step.product, step.state_after, goal)
            + _purpose(matrix, steps, i, goal),
        )
        for i, step in enumerate(steps)
    )


def start_of(steps: list[Step], index: int) -> State:
    """The state before ``steps[index]``."""
    after = steps[index].state_after
    return after.with_version(steps[index].product, steps[index].old)


def _purpose(matrix: Matrix, steps: list[Step], index: int, goal: Goal) -> str:
    """What step ``index`` is for: the target itself, or a later step that needs it."""
    step = steps[index]
    target = goal.get(step.product)
    if target is not None and step.new.within(target):
        return f"; reaches the target {step.product.label} {target}."
    for later in steps[index + 1 :]:
        if later.product is step.product:
            return f"; on the way to {step.product.label} {later.new}."
        without = later.state_after.with_version(step.product, step.old)
        if not is_supported(matrix, without):
            return f"; needed before {_short(later)}, as {without.describe()} is not supported."
    return "."


def _short(step: Step) -> str:
    return f"{step.product.label} {step.old} \u2192 {step.new}"


def step_reason(matrix: Matrix, before: State, product: Product, after: State, goal: Goal) -> str:
    """Why this step is allowed: the upgrade route, and the matrix row for the state after."""
    old, new = before.get(product), after.get(product)
    assert old is not None and new is not None
    rules = matrix.upgrades[product]
    hop = rules.hop(old, new)
    if hop is not None:
        how = f"{product.label} {old} \u2192 {new} is a supported direct upgrade ({hop.describe()})"
    else:
        how = f"{product.label} {old} \u2192 {new} is a patch upgrade"
    row = matrix.row_for(after.pks)
    assert row is not None
    fit = f"PKS {after.pks} supports NSX-T {after.nsxt}"
    if after.opsman is not None:
        fit += f" with Ops Manager {after.opsman}"
    fit += f" ({row.pks_text}: NSX-T {row.nsxt.text}; Ops Manager {row.opsman.text})"
    return f"{how}; {fit}"
