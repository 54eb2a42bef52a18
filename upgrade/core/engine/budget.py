"""The hosts phase's failure budget (``max_fail_percentage: {hosts: P}``, Ansible's name).

Pure, like the rest of the engine.  With a budget of P %, a failed host does not
stop the hosts phase while the hosts failed (and not yet retried or skipped)
are at most P % of the phase's hosts; one more stops new work in the phase as
any failure does without a budget.  A failed host stays where it failed: if it
holds maintenance it keeps holding it (and its group slot), so the
maintenance-capacity rule and evacuation count it as unavailable.  The default,
0 %, is the rule without a budget: the first failure stops new work.
"""

from __future__ import annotations

from collections.abc import Iterable

from upgrade.core.engine.items import Item
from upgrade.core.engine.machines import UnitState
from upgrade.core.plan import Phase


class Budget:
    """How many failed hosts the hosts phase goes on past."""

    __slots__ = ("percent", "total")
    #: fields that change as the run goes (a snapshot keeps these): none, all from the plan
    STATE: tuple[str, ...] = ()

    def __init__(self, percent: int, items: Iterable[Item]) -> None:
        self.percent = percent
        #: the hosts of the phase (units already at the target are not items)
        self.total = sum(1 for i in items if i.phase is Phase.HOSTS)

    @property
    def allowed(self) -> int:
        """The most failed hosts that are within the budget."""
        return self.percent * self.total // 100

    def applies(self, phase: Phase) -> bool:
        """True when ``phase`` has a budget at all."""
        return phase is Phase.HOSTS and self.allowed > 0

    def within(self, failed: int) -> bool:
        """True when ``failed`` failed hosts do not exceed the budget."""
        return failed <= self.allowed

    def describe(self, failed: int) -> str:
        """``2 of 20 hosts failed; the budget (10 %) allows 2``."""
        return (f"{failed} of {self.total} hosts failed; the budget ({self.percent} %) "
                f"allows {self.allowed}")


def failed_hosts(items: Iterable[Item]) -> list[str]:
    """Ids of the hosts that failed and wait for an operator, in plan order."""
    return [i.id for i in items if i.phase is Phase.HOSTS and i.state is UnitState.FAILED]
