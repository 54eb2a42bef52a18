"""Multi-hop upgrade paths: the shortest sequence of single-product upgrades.

A *state* is the PKS, NSX-T and Ops Manager versions running together.  A *step*
upgrades one product to a concrete release (never ``2.2.x``) by a supported
direct upgrade (a hop between series, or a later patch of the same series), and
the state after every step must be supported by the matrix.  The start may be
unsupported (that is often why one upgrades).  :func:`find_path` is a
breadth-first search, so the first path it finds is a shortest one; when there
is none, :func:`explain_block` names the constraint that blocks.

Pure: no I/O, no clock; the same inputs always give the same path.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, replace

from upgrade.compat.matrix import Matrix, Product, supports
from upgrade.versions import Version

#: the order in which a step's product is tried, which breaks ties between equal-length paths
PRODUCT_ORDER = (Product.PKS, Product.OPSMAN, Product.NSXT)


@dataclass(frozen=True, slots=True)
class State:
    """The versions running together; ``opsman`` None means "not tracked"."""

    pks: Version
    nsxt: Version
    opsman: Version | None = None

    def get(self, product: Product) -> Version | None:
        """The version of ``product``."""
        return {Product.PKS: self.pks, Product.NSXT: self.nsxt, Product.OPSMAN: self.opsman}[
            product
        ]

    def with_version(self, product: Product, version: Version) -> State:
        """A copy with ``product`` at ``version``."""
        return replace(self, **{product.value: version})

    def to_json(self) -> dict[str, str | None]:
        """``{"pks", "nsxt", "opsman"}`` as strings (contract)."""
        return {
            "pks": str(self.pks),
            "nsxt": str(self.nsxt),
            "opsman": None if self.opsman is None else str(self.opsman),
        }

    def describe(self) -> str:
        """``PKS 1.2.0, NSX-T 2.3.0.0, Ops Manager 2.3.1``."""
        text = f"PKS {self.pks}, NSX-T {self.nsxt}"
        return text if self.opsman is None else f"{text}, Ops Manager {self.opsman}"


@dataclass(frozen=True, slots=True)
class Goal:
    """Where to arrive: each given version is a prefix (``2.3`` means any 2.3.x)."""

    pks: Version | None = None
    nsxt: Version | None = None
    opsman: Version | None = None

    def get(self, product: Product) -> Version | None:
        """The target for ``product``, if any."""
        return {Product.PKS: self.pks, Product.NSXT: self.nsxt, Product.OPSMAN: self.opsman}[
            product
        ]

    def reached(self, state: State) -> bool:
        """True when every given target is met by ``state``."""
        for product in Product:
            want, have = self.get(product), state.get(product)
            if want is not None and (have is None or not have.within(want)):
                return False
        return True

    def describe(self) -> str:
        """``PKS 1.2, NSX-T 2.3``."""
        return ", ".join(f"{p.label} {self.get(p)}" for p in Product if self.get(p) is not None)


@dataclass(frozen=True, slots=True)
class Step:
    """One product upgraded to one concrete release, and the state after it."""

    product: Product
    old: Version
    new: Version
    state_after: State
    reason: str

    def to_json(self) -> dict[str, object]:
        """``{"product", "from", "to", "state_after", "reason"}`` (contract plus reason)."""
        return {
            "product": self.product.value,
            "from": str(self.old),
            "to": str(self.new),
            "state_after": self.state_after.to_json(),
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class Blocked:
    """Why no path exists: ``kind`` is upgrade-route, target or intermediate."""

    kind: str
    reason: str

    def to_json(self) -> dict[str, str]:
        """``{"kind", "reason"}``."""
        return {"kind": self.kind, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class PathResult:
    """A shortest path, or why there is none."""

    start: State
    goal: Goal
    steps: tuple[Step, ...] | None
    blocked_by: Blocked | None = None

    @property
    def found(self) -> bool:
        """True when a path exists (possibly empty: already there)."""
        return self.steps is not None

    def to_json(self) -> dict[str, object]:
        """The ``compat path --format json`` document (contract plus extra keys)."""
        doc: dict[str, object] = {
            "found": self.found,
            "steps": [s.to_json() for s in self.steps or ()],
            "from": self.start.to_json(),
            "to": {p.value: _opt(self.goal.get(p)) for p in Product},
        }
        if self.blocked_by is not None:
            doc["blocked_by"] = self.blocked_by.to_json()
        return doc


def _opt(version: Version | None) -> str | None:
    return None if version is None else str(version)


def is_supported(matrix: Matrix, state: State) -> bool:
    """True when the matrix supports ``state``."""
    row = matrix.row_for(state.pks)
    return row is not None and supports(row, state.nsxt, state.opsman)


def candidates(matrix: Matrix, product: Product, goal: Goal) -> tuple[Version, ...]:
    """The concrete releases a step may upgrade ``product`` to, ascending."""
    found = list(matrix.releases.get(product, ()))
    target = goal.get(product)
    if target is not None and not any(v == target for v in found):
        found.append(target)
    return tuple(sorted(found))


def neighbours(
    matrix: Matrix, state: State, pool: dict[Product, tuple[Version, ...]]
) -> Iterator[tuple[Product, Version, State]]:
    """Every supported state one valid step away from ``state``."""
    for product in PRODUCT_ORDER:
        current = state.get(product)
        if current is None:
            continue
        rules = matrix.upgrades[product]
        for version in pool[product]:
            if not rules.allows(current, version):
                continue
            after = state.with_version(product, version)
            if is_supported(matrix, after):
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


# -- explaining a missing path ------------------------------------------------------------


def explain_block(matrix: Matrix, start: State, goal: Goal, reached: set[State]) -> Blocked:
    """Name the constraint that stops every path from ``start`` to ``goal``."""
    pool = {p: candidates(matrix, p, goal) for p in Product}
    reachable: dict[Product, list[Version]] = {}
    for product in Product:
        current = start.get(product)
        target = goal.get(product)
        if current is None:
            if target is not None:
                return Blocked("input", f"no {product.label} version given to start from")
            continue
        reachable[product] = _route_closure(matrix, product, current, pool[product])
        if target is not None and not any(v.within(target) for v in reachable[product]):
            return Blocked("upgrade-route", _route_reason(matrix, product, current, target))
    combos = [
        State(p, n, o)
        for p in reachable[Product.PKS]
        for n in reachable[Product.NSXT]
        for o in reachable.get(Product.OPSMAN, [None])
    ]
    if not any(goal.reached(s) and is_supported(matrix, s) for s in combos):
        return Blocked("target", _target_reason(matrix, goal))
    best = sorted(reached, key=lambda s: _closeness(goal, s), reverse=True)[:3]
    near = "; ".join(s.describe() for s in best)
    return Blocked(
        "intermediate",
        f"every route to {goal.describe()} passes through a combination the matrix does not "
        f"support; the supported states reachable from {start.describe()} get at best to: {near}",
    )


def _route_closure(
    matrix: Matrix, product: Product, start: Version, pool: tuple[Version, ...]
) -> list[Version]:
    """Every version of ``product`` reachable by upgrades alone, ignoring the matrix."""
    rules = matrix.upgrades[product]
    seen = [start]
    frontier = [start]
    while frontier:
        current = frontier.pop()
        for version in pool:
            if rules.allows(current, version) and not any(version == s for s in seen):
                seen.append(version)
                frontier.append(version)
    return seen


def _route_reason(matrix: Matrix, product: Product, current: Version, target: Version) -> str:
    title = product.label
    if not current < target and not current.within(target):
        return f"{title} cannot be downgraded from {current} to {target}"
    rules = matrix.upgrades[product]
    onward = [h.describe() for h in rules.hops if current.within(h.source_series)]
    hops = ", ".join(onward) if onward else "none"
    return (
        f"no chain of supported {title} upgrades leads from {current} to {target} "
        f"(direct upgrades from {current}: {hops})"
    )


def _target_reason(matrix: Matrix, goal: Goal) -> str:
    text = f"no supported combination matches {goal.describe()}"
    if goal.pks is not None and (row := matrix.row_for(goal.pks)) is not None:
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
