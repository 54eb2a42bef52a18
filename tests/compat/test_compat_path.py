"""The multi-hop path search: the shipped data's done-when case, and properties on
small generated matrices checked against an independent brute-force oracle."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from upgrade.compat.load import load_matrix
from upgrade.compat.matrix import Hop, Matrix, Row, UpgradeRules
from upgrade.compat.path import Goal, State, find_path
from upgrade.compat.products import Product
from upgrade.compat.ranges import VersionSpec
from upgrade.compat.sources import Citation, Ref
from upgrade.core.versions import Version

GENERATED = Citation("generated", (Ref(None, None, "generated"),))


def v(text: str) -> Version:
    return Version.parse(text)


# -- the shipped matrix --------------------------------------------------------------------


def test_pks_114_on_21_to_pks_12_on_23_goes_through_nsxt_22() -> None:
    """No PKS supports both NSX-T 2.1 and 2.3, so the path must stop at 2.2."""
    matrix = load_matrix()
    result = find_path(matrix, State(v("1.1.4"), v("2.1"), v("2.1")), Goal(v("1.2"), v("2.3")))
    assert result.steps is not None
    nsxt_seen = [s.state_after.nsxt for s in result.steps]
    assert any(n.within(v("2.2")) for n in nsxt_seen)
    for step in result.steps:
        row = matrix.row_for(step.state_after.pks)
        assert row is not None
        assert row.nsxt.contains(step.state_after.nsxt)
        assert step.state_after.opsman is not None
        assert row.opsman.contains(step.state_after.opsman)
    final = result.steps[-1].state_after
    assert final.pks.within(v("1.2")) and final.nsxt.within(v("2.3"))
    assert len(result.steps) == 5


def test_no_pks_release_supports_both_21_and_23() -> None:
    """The fact the issue relies on holds in the shipped data."""
    for row in load_matrix().rows:
        assert not (row.nsxt.contains(v("2.1.0.0")) and row.nsxt.contains(v("2.3.0.0")))


def test_already_there_is_an_empty_path() -> None:
    """A start that meets the goal needs no steps."""
    result = find_path(
        load_matrix(), State(v("1.2.0"), v("2.3"), v("2.3.1")), Goal(v("1.2"), v("2.3"))
    )
    assert result.found and result.steps == ()


def test_downgrade_is_blocked_by_the_upgrade_route() -> None:
    """NSX-T 2.x has no downgrade; the block names the route."""
    result = find_path(
        load_matrix(), State(v("1.2.0"), v("2.3"), v("2.3.1")), Goal(v("1.2"), v("2.2"))
    )
    assert not result.found
    assert result.blocked_by is not None
    assert result.blocked_by.kind == "upgrade-route"
    assert "downgraded" in result.blocked_by.reason


def test_unsupported_target_is_blocked_by_the_target() -> None:
    """PKS 1.1.4 never runs on NSX-T 2.3: the block quotes what 1.1.4 needs."""
    result = find_path(
        load_matrix(), State(v("1.1.4"), v("2.1"), v("2.1")), Goal(v("1.1.4"), v("2.3"))
    )
    assert result.blocked_by is not None
    assert result.blocked_by.kind == "target"
    assert "PKS 1.1.4 needs NSX-T 2.1" in result.blocked_by.reason


# -- small generated matrices ---------------------------------------------------------------

SERIES = {
    Product.PKS: ["1.0", "1.1", "1.2"],
    Product.NSXT: ["2.0", "2.1", "2.2", "2.3"],
    Product.OPSMAN: ["3.0", "3.1", "3.2"],
}


@dataclass(frozen=True)
class World:
    """A generated matrix in plain data, for the oracle, and as a Matrix, for the planner."""

    releases: dict[Product, tuple[Version, ...]]
    support: dict[Version, tuple[frozenset[str], frozenset[str]]]  # pks -> (nsxt, opsman) series
    hops: dict[Product, frozenset[tuple[str, str]]]
    patches: dict[Product, bool]

    def matrix(self) -> Matrix:
        rows = []
        for pks, (nsxt, ops) in self.support.items():
            # PKS upgrades are per target release: from every series that hops to its series,
            # and from its own series when patches are allowed
            froms = sorted(a for a, b in self.hops[Product.PKS] if b == _series(pks))
            if self.patches[Product.PKS]:
                froms.append(_series(pks))
            rows.append(
                Row(
                    pks,
                    VersionSpec.parse(", ".join(sorted(nsxt))),
                    VersionSpec.parse(", ".join(sorted(ops))),
                    GENERATED,
                    upgrade_from=VersionSpec.parse(", ".join(froms)) if froms else None,
                )
            )
        upgrades = {
            p: UpgradeRules(
                tuple(
                    Hop(VersionSpec.parse(a), VersionSpec.parse(b), GENERATED)
                    for a, b in sorted(self.hops[p])
                ),
                GENERATED if self.patches[p] else None,
            )
            for p in (Product.NSXT, Product.OPSMAN)
        }
        releases = {p: self.releases[p] for p in (Product.NSXT, Product.OPSMAN)}
        return Matrix(tuple(rows), releases, upgrades)


def _series(version: Version) -> str:
    return ".".join(str(x) for x in version.padded(2)[:2])


@st.composite
def worlds(draw: st.DrawFn) -> World:
    releases: dict[Product, tuple[Version, ...]] = {}
    hops: dict[Product, frozenset[tuple[str, str]]] = {}
    patches: dict[Product, bool] = {}
    for product, names in SERIES.items():
        chosen = draw(st.lists(st.sampled_from(names), min_size=1, max_size=3, unique=True))
        found = []
        for name in sorted(chosen):
            for patch in draw(st.lists(st.integers(0, 2), min_size=1, max_size=2, unique=True)):
                found.append(v(f"{name}.{patch}"))
        releases[product] = tuple(sorted(found))
        pairs = list(itertools.combinations(names, 2))
        hops[product] = frozenset(p for p in pairs if draw(st.integers(0, 9)) < 8)
        patches[product] = draw(st.integers(0, 9)) < 8
    support = {}
    for pks in releases[Product.PKS]:
        support[pks] = (draw(_window(SERIES[Product.NSXT])), draw(_window(SERIES[Product.OPSMAN])))
    return World(releases, support, hops, patches)


def _window(names: list[str]) -> st.SearchStrategy[frozenset[str]]:
    """Mostly a run of one or two consecutive series (as real rows are), sometimes any set."""
    runs = [frozenset(names[i : i + n]) for n in (1, 2) for i in range(len(names) - n + 1)]
    return st.one_of(st.sampled_from(runs), st.frozensets(st.sampled_from(names), min_size=1))


@st.composite
def problems(draw: st.DrawFn) -> tuple[World, State, Goal]:
    world = draw(worlds())
    start = State(*(draw(st.sampled_from(world.releases[p][:2])) for p in Product))

    def target(product: Product, optional: bool) -> Version | None:
        last = world.releases[product][-1]
        choices: list[Version | None] = [last, v(_series(last)), *world.releases[product]]
        choices.append(v(SERIES[product][-1]))
        if optional:
            choices.append(None)
        return draw(st.sampled_from(choices))

    pks = target(Product.PKS, False)
    nsxt = target(Product.NSXT, False)
    opsman = target(Product.OPSMAN, True)
    entry = next((e for k, e in world.support.items() if pks is not None and k.within(pks)), None)
    if entry is not None and draw(st.booleans()):  # half the time, aim at a supported target
        nsxt = v(draw(st.sampled_from(sorted(entry[0]))))
        opsman = draw(st.sampled_from([None, v(sorted(entry[1])[-1])]))
    return world, start, Goal(pks, nsxt, opsman)


# The oracle: written from the rules in plain words, sharing no code with the planner.


def oracle_supported(world: World, state: State) -> bool:
    entry = world.support.get(state.pks)
    if entry is None:
        return False
    nsxt, ops = entry
    assert state.opsman is not None
    return _series(state.nsxt) in nsxt and _series(state.opsman) in ops


def oracle_step_ok(world: World, product: Product, old: Version, new: Version) -> bool:
    if not new > old:
        return False
    same = _series(old) == _series(new)
    if same:
        return world.patches[product]
    return (_series(old), _series(new)) in world.hops[product]


def oracle_targets(world: World, product: Product, goal: Goal) -> list[Version]:
    found = list(world.releases[product])
    wanted = goal.get(product)
    if wanted is not None and wanted not in found:
        found.append(wanted)
    return found


def oracle_reached(goal: Goal, state: State) -> bool:
    return all(
        (want := goal.get(p)) is None or ((have := state.get(p)) is not None and have.within(want))
        for p in Product
    )


def oracle_shortest(world: World, start: State, goal: Goal) -> int | None:
    """Exhaustive search over every valid sequence (versions only grow, so it ends)."""
    best: int | None = None

    def walk(state: State, depth: int) -> None:
        nonlocal best
        if oracle_reached(goal, state):
            best = depth if best is None else min(best, depth)
            return
        if best is not None and depth >= best:
            return
        for product in Product:
            old = state.get(product)
            assert old is not None
            for new in oracle_targets(world, product, goal):
                after = state.with_version(product, new)
                if oracle_step_ok(world, product, old, new) and oracle_supported(world, after):
                    walk(after, depth + 1)

    walk(start, 0)
    return best


@settings(max_examples=200, deadline=None)
@given(problems())
def test_every_returned_path_is_valid_step_by_step(problem: tuple[World, State, Goal]) -> None:
    """Each step upgrades one product by an allowed step, to a release, into a supported state."""
    world, start, goal = problem
    result = find_path(world.matrix(), start, goal)
    if result.steps is None:
        assert result.blocked_by is not None and result.blocked_by.reason
        return
    state = start
    for step in result.steps:
        assert state.get(step.product) == step.old
        changed = [p for p in Product if state.get(p) != step.state_after.get(p)]
        assert changed == [step.product]
        assert step.state_after.get(step.product) == step.new
        assert step.new in oracle_targets(world, step.product, goal)
        assert oracle_step_ok(world, step.product, step.old, step.new)
        assert oracle_supported(world, step.state_after)
        assert step.reason
        state = step.state_after
    assert oracle_reached(goal, state)


@settings(max_examples=200, deadline=None)
@given(problems())
def test_no_shorter_valid_path_exists(problem: tuple[World, State, Goal]) -> None:
    """The planner finds a path exactly when one exists, and never a longer one than needed."""
    world, start, goal = problem
    result = find_path(world.matrix(), start, goal)
    best = oracle_shortest(world, start, goal)
    if best is None:
        assert not result.found
    else:
        assert result.steps is not None
        assert len(result.steps) == best
