"""The simulated world's records: units, VMs and operation attempts.

Plain mutable data, one record per unit, VM and (unit, operation): what
:mod:`upgrade.sim.store` writes to a state directory and ``sim show`` prints.
The rules that change them live in :mod:`upgrade.sim.world`; each record says how
``sim show`` prints it (``view``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from upgrade.core.model import Op, UnitKind


@dataclass(slots=True)
class OpRecord:
    """The latest attempt of one operation on one unit."""

    op: Op
    unit: str
    attempt: int
    start: float
    #: when it ends; None while it hangs or waits for an evacuation
    end: float | None
    ok: bool = True
    detail: str = ""
    moves: list[tuple[str, str]] = field(default_factory=list)
    #: a manual-DRS maintenance entry that ends when the host has been evacuated
    awaits_evacuation: bool = False
    applied: bool = False
    #: a "timeout" fault on an entry that waits for evacuation: it ends that much later
    slow: bool = False

    def view(self) -> dict[str, Any]:
        """The attempt as ``sim show --format json`` prints it."""
        return {"unit": self.unit, "op": self.op.value, "attempt": self.attempt,
                "start": self.start, "end": self.end, "ok": self.ok}


@dataclass(slots=True)
class UnitRecord:
    """One upgrade unit as the world sees it."""

    id: str
    kind: UnitKind
    group: str
    version: str
    in_maintenance: bool = False
    upgrades: list[list[float | None]] = field(default_factory=list)
    maintenance: list[list[float | None]] = field(default_factory=list)

    def view(self) -> dict[str, Any]:
        """The unit as ``sim show --format json`` prints it."""
        return {
            "id": self.id,
            "kind": self.kind.value,
            "group": self.group,
            "version": self.version,
            "in_maintenance": self.in_maintenance,
            "upgrade_count": len(self.upgrades),
            "upgrades": [{"start": s, "end": e} for s, e in self.upgrades],
            "maintenance": [{"start": s, "end": e} for s, e in self.maintenance],
        }


@dataclass(slots=True)
class VmRecord:
    """One VM: where it runs and how it got there."""

    id: str
    host: str
    powered_on: bool
    moves: list[tuple[float, str, str]] = field(default_factory=list)

    def view(self) -> dict[str, Any]:
        """The VM as ``sim show --format json`` prints it."""
        return {"id": self.id, "host": self.host, "powered_on": self.powered_on,
                "moves": [{"at": at, "from": a, "to": b} for at, a, b in self.moves]}
