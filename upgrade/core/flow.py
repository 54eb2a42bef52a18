"""An upgrade flow: the order in which one NSX-T release's Upgrade Coordinator upgrades.

The order is not the same in every release (2.1-2.3: hosts, edges, controllers, then the
management plane; from 2.4 the NSX Controller is merged into the NSX Manager during the
management-plane upgrade, so there is no controller phase).  A :class:`Flow` is that
order as plain data, read from the sourced flow data (:mod:`upgrade.compat.flows`); the
plan lays its unit phases out in the flow's order and the engine's phase machine is
built from the plan's phases, so no release is ever run in another release's order.
"""

from __future__ import annotations

from dataclasses import dataclass

from upgrade.core.model import UnitKind
from upgrade.core.plan import Phase


@dataclass(frozen=True, slots=True)
class FlowPhase:
    """One unit phase of a flow: which units, what may run at once, which API calls."""

    phase: Phase
    unit: UnitKind
    #: what runs at once, as the vendor says it (shown in the plan)
    parallel: str
    #: the Upgrade Coordinator API calls the nsxt adapter uses for this phase
    api: tuple[str, ...]
    #: where these facts come from, rendered for people
    source: str


@dataclass(frozen=True, slots=True)
class Flow:
    """The Upgrade Coordinator's order for one hop (``from`` -> ``to`` releases)."""

    id: str
    #: ``"NSX-T 2.3.1 -> 2.4.x"``
    title: str
    #: the releases it upgrades from and to, in the data's notation (``"2.3.1+"``)
    from_spec: str
    to_spec: str
    #: the unit phases, in the order the coordinator runs them
    phases: tuple[FlowPhase, ...]
    #: where the order comes from, rendered for people (``plan --format json``'s source)
    source: str
    #: unit kinds the target release has no phase for, merged into another unit during
    #: the upgrade (2.4: the controllers, into the manager), and why
    merged: tuple[UnitKind, ...] = ()
    merged_note: str = ""

    @property
    def order(self) -> tuple[Phase, ...]:
        """The unit phases in order."""
        return tuple(p.phase for p in self.phases)

    def describe(self) -> str:
        """``2.3-to-2.4 (NSX-T 2.3.1+ -> 2.4.x: hosts, edges, manager)``."""
        return f"{self.id} ({self.title}: {', '.join(p.value for p in self.order)})"
