"""The pure gate rule: which gates an observation passes, and what it refuses."""

from __future__ import annotations

from upgrade.compat.load import load_matrix
from upgrade.compat.matrix import Product
from upgrade.compat.path import Goal, State
from upgrade.core.versions import Version
from upgrade.journey.gates import Reading, check_gates
from upgrade.journey.route import gate_block, plan_route

V = Version.parse
MATRIX = load_matrix()
START = State(V("1.1.4"), V("2.1.0.0"), V("2.1.3"))
_, STEPS = plan_route(MATRIX, START, Goal(V("1.3.5"), V("2.3.1.0")))


def test_the_route_is_compat_paths() -> None:
    """Eleven steps; the hops are steps 3 and 11; the first gate block is steps 1-2."""
    assert len(STEPS) == 11
    assert [s.n for s in STEPS if s.is_hop] == [3, 11]
    assert [s.n for s in gate_block(STEPS, 0)] == [1, 2]
    assert [s.n for s in gate_block(STEPS, 3)] == [4, 5, 6, 7, 8, 9, 10]


def test_nothing_moved_passes_nothing() -> None:
    """An observation of the current versions waits, refusing nothing."""
    check = check_gates(MATRIX, START, gate_block(STEPS, 0),
                        {Product.PKS: Reading(V("1.1.4")), Product.OPSMAN: Reading(V("2.1.3"))})
    assert check.passed == () and not check.refused and check.state == START


def test_the_furthest_matching_gate_passes_those_before_it() -> None:
    """PKS 1.1.5 and Ops Manager 2.2.3 pass gates 1 and 2 together."""
    check = check_gates(MATRIX, START, gate_block(STEPS, 0),
                        {Product.PKS: Reading(V("1.1.5")), Product.OPSMAN: Reading(V("2.2.3"))})
    assert [s.n for s in check.passed] == [1, 2]
    assert check.state == State(V("1.1.5"), V("2.1.0.0"), V("2.2.3"))


def test_a_minor_only_reading_fits_the_patch_of_its_minor() -> None:
    """Ops Manager 2.x writes 2.2-build.N: that fits the step to 2.2.3."""
    at = STEPS[1].before
    check = check_gates(MATRIX, at, gate_block(STEPS, 1),
                        {Product.OPSMAN: Reading(V("2.2"), exact=False)})
    assert [s.n for s in check.passed] == [2]


def test_skipping_a_gate_is_off_the_path() -> None:
    """Ops Manager upgraded before PKS (gate 2 before gate 1): refused, not passed."""
    check = check_gates(MATRIX, START, gate_block(STEPS, 0),
                        {Product.OPSMAN: Reading(V("2.2.3"))})
    assert check.refused and "not on the journey's path" in (check.refusal or "")


def test_an_unsupported_state_is_refused_as_such() -> None:
    """PKS 1.2.0 on NSX-T 2.1 is not supported: the refusal says so."""
    check = check_gates(MATRIX, START, gate_block(STEPS, 0), {Product.PKS: Reading(V("1.2.0"))})
    assert check.refused and "is not supported by the compatibility matrix" in (
        check.refusal or "")
