"""The journey's steps: ``compat path``'s shortest path, each step an NSX-T hop or a gate.

Pure: a :class:`~upgrade.compat.matrix.Matrix` and versions in, frozen steps out.  The
steps are journaled when a journey starts and read back from the journal after, so a
journey keeps the path it set out on even if the data changes meanwhile.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from upgrade.compat.matrix import Matrix, Product
from upgrade.compat.path import Goal, PathResult, State, find_path
from upgrade.core.versions import Version


@dataclass(frozen=True, slots=True)
class JourneyStep:
    """One step of the path: an NSX-T hop (run by this engine) or a gate (the operator's)."""

    #: 1-based position in the journey
    n: int
    product: Product
    old: Version
    new: Version
    before: State
    after: State
    reason: str
    source: str
    warnings: tuple[str, ...] = ()

    @property
    def is_hop(self) -> bool:
        """True for an NSX-T upgrade, which this engine runs."""
        return self.product is Product.NSXT

    @property
    def kind(self) -> str:
        """``nsxt``, ``pks`` or ``opsman`` (contract)."""
        return self.product.value

    @property
    def slug(self) -> str:
        """``03-nsxt-2.2.0.0``: the step's directory name under the journey's."""
        return f"{self.n:02d}-{self.kind}-{self.new}"

    def title(self) -> str:
        """``upgrade NSX-T 2.1 → 2.2.0.0``."""
        return f"upgrade {self.product.label} {self.old} \u2192 {self.new}"

    def to_json(self) -> dict[str, Any]:
        """Plain data (journal and JSON output)."""
        return {"n": self.n, "kind": self.kind, "from": str(self.old), "to": str(self.new),
                "state_before": self.before.to_json(), "state_after": self.after.to_json(),
                "reason": self.reason, "source": self.source, "warnings": list(self.warnings)}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> JourneyStep:
        """Read back what :meth:`to_json` wrote."""
        return cls(int(doc["n"]), Product(doc["kind"]), Version.parse(doc["from"]),
                   Version.parse(doc["to"]), state_from_json(doc["state_before"]),
                   state_from_json(doc["state_after"]), str(doc["reason"]), str(doc["source"]),
                   tuple(doc.get("warnings", ())))


def state_from_json(doc: dict[str, Any]) -> State:
    """A :class:`State` from ``{"pks", "nsxt", "opsman"}``."""
    opsman = doc.get("opsman")
    return State(Version.parse(doc["pks"]), Version.parse(doc["nsxt"]),
                 None if opsman is None else Version.parse(opsman))


def plan_route(matrix: Matrix, start: State, goal: Goal,
               strict: bool = False) -> tuple[PathResult, tuple[JourneyStep, ...]]:
    """The shortest path from ``start`` to ``goal`` as journey steps (empty: none or there)."""
    result = find_path(matrix, start, goal, strict)
    steps = []
    before = start
    for n, step in enumerate(result.steps or (), start=1):
        steps.append(JourneyStep(n, step.product, step.old, step.new, before, step.state_after,
                                 step.reason, step.source, step.warnings))
        before = step.state_after
    return result, tuple(steps)


def gate_block(steps: tuple[JourneyStep, ...], index: int) -> tuple[JourneyStep, ...]:
    """The gates from ``steps[index]`` up to the next NSX-T hop (the operator may pass
    several in one sitting: PKS 1.2.4, 1.2.5, 1.2.7, 1.2.8 in a row)."""
    block = []
    for step in steps[index:]:
        if step.is_hop:
            break
        block.append(step)
    return tuple(block)
