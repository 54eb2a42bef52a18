"""Whether a gate is passed: what Ops Manager (or the operator) reports, against the path.

Pure.  An observation gives versions for some products (from Ops Manager: its own,
possibly minor-only like ``2.3-build.123``, and the PKS tile's; from ``--confirm``: exact
ones).  Products it does not give are taken as they were.  It passes the gates up to the
furthest one whose state after it matches; it passes none when it matches the state
before them (the operator has not upgraded yet); anything else is off the path and is
refused, saying whether the matrix supports it at all.
"""

from __future__ import annotations

from dataclasses import dataclass

from upgrade.compat.matrix import Matrix, Product
from upgrade.compat.path import State, is_supported
from upgrade.core.versions import Version
from upgrade.journey.route import JourneyStep


@dataclass(frozen=True, slots=True)
class Reading:
    """One product's version as observed; ``exact`` False for a minor-only reading."""

    version: Version
    exact: bool = True
    #: who said so: ``Ops Manager at URL`` or ``--confirm``
    by: str = "--confirm"

    def matches(self, expected: Version) -> bool:
        """True when ``expected`` is what this reading may be."""
        return expected == self.version if self.exact else expected.within(self.version)

    def shown(self) -> str:
        """``2.3 (minor only)`` or ``2.3.1``."""
        return str(self.version) if self.exact else f"{self.version}.x (the minor only)"


@dataclass(frozen=True, slots=True)
class GateCheck:
    """The outcome: ``passed`` gates (possibly none), or ``refusal`` when off the path."""

    passed: tuple[JourneyStep, ...]
    #: the state after the last passed gate, or the current one
    state: State
    refusal: str | None = None
    #: ambiguity worth saying (a minor-only reading cannot tell two patches apart)
    note: str | None = None

    @property
    def refused(self) -> bool:
        """True when what was observed is off the path or unsupported (exit 4)."""
        return self.refusal is not None


def _fits(readings: dict[Product, Reading], at: State, expected: State) -> bool:
    for product in Product:
        want = expected.get(product)
        reading = readings.get(product)
        if reading is None:
            if at.get(product) != want:
                return False
        elif want is None or not reading.matches(want):
            return False
    return True


def _observed_state(at: State, block: tuple[JourneyStep, ...],
                    readings: dict[Product, Reading]) -> tuple[State, bool]:
    """The state the readings describe, and whether every version in it is concrete (a
    minor-only reading takes the patch it fits among the known states)."""
    observed, concrete = at, True
    for product, reading in readings.items():
        known = [v for v in (at.get(product), *(s.after.get(product) for s in block))
                 if v is not None]
        version = next((v for v in known if reading.matches(v)), None)
        if version is None:
            version, concrete = reading.version, concrete and reading.exact
        observed = observed.with_version(product, version)
    return observed, concrete


def check_gates(matrix: Matrix, at: State, block: tuple[JourneyStep, ...],
                readings: dict[Product, Reading], strict: bool = False) -> GateCheck:
    """Which gates of ``block`` (consecutive, starting where the journey waits) the
    ``readings`` pass; every passed state is re-checked against ``matrix``."""
    furthest = None
    for i in range(len(block) - 1, -1, -1):
        if _fits(readings, at, block[i].after):
            furthest = i
            break
    still = _fits(readings, at, at)
    if furthest is not None and still:
        ambiguous = ", ".join(f"{p.label} {r.shown()}" for p, r in readings.items()
                              if not r.exact)
        return GateCheck((), at, note=(
            f"{ambiguous} fits both the current state and the step's target; confirm the "
            f"exact version with --confirm {block[0].kind}={block[0].new}"))
    if furthest is not None:
        passed = block[: furthest + 1]
        state = passed[-1].after
        if not is_supported(matrix, state, strict):
            return GateCheck((), at, f"{state.describe()} is not supported by the "
                             "compatibility matrix (any more)")
        return GateCheck(passed, state)
    if still:
        return GateCheck((), at)
    observed, concrete = _observed_state(at, block, readings)
    said = "; ".join(f"{r.by}: {p.label} {r.shown()}" for p, r in readings.items())
    expected = (f"{block[0].after.describe()} (step {block[0].n}: {block[0].title()})"
                if block else f"{at.describe()} (unchanged)")
    if concrete and not is_supported(matrix, observed, strict):
        return GateCheck((), at, f"{said}: {observed.describe()} is not supported by the "
                         f"compatibility matrix; the journey expected {expected}")
    return GateCheck((), at, f"{said}: that is not on the journey's path; it expected "
                     f"{expected}; plan a new journey from the state the site is in now")
