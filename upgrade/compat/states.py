"""The states, goals and steps of upgrade paths: plain frozen data.

A *state* is the PKS, NSX-T and Ops Manager versions running together; a *goal*
gives a target version per product as a prefix (``2.3`` means any 2.3.x); a
*step* upgrades one product to one concrete release.  What the matrix allows from a
state is in :mod:`upgrade.compat.moves`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from upgrade.compat.products import Product
from upgrade.core.versions import Version


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
    #: the documents that allow this step (the upgrade route and the row after it)
    source: str = ""
    #: vendor advice this step goes against, or documents that disagree about it
    warnings: tuple[str, ...] = ()

    def to_json(self) -> dict[str, object]:
        """``{"product", "from", "to", "state_after"}`` (contract) plus reason, source, warnings."""
        return {
            "product": self.product.value,
            "from": str(self.old),
            "to": str(self.new),
            "state_after": self.state_after.to_json(),
            "reason": self.reason,
            "source": self.source,
            "warnings": list(self.warnings),
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
            "warnings": [w for s in self.steps or () for w in s.warnings],
            "from": self.start.to_json(),
            "to": {p.value: _opt(self.goal.get(p)) for p in Product},
        }
        if self.blocked_by is not None:
            doc["blocked_by"] = self.blocked_by.to_json()
        return doc


def _opt(version: Version | None) -> str | None:
    return None if version is None else str(version)
