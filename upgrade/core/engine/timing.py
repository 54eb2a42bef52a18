"""How long the engine expects each operation to take, and how long it waits before giving up.

Pure: durations come from the inventory, limits from the playbook (:class:`Policy`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from upgrade.core.engine.items import Item
from upgrade.core.model import Canary, Inventory, OnError, Op, Playbook, Timeouts
from upgrade.core.plan import UNIT_PHASES, Phase
from upgrade.core.window import Calendar

#: the default timeout of an operation: twice its expected duration, plus this margin
TIMEOUT_MARGIN_S = 600.0


@dataclass(frozen=True, slots=True)
class Policy:
    """How patient and how persistent the engine is."""

    retries: int = 2
    on_error: OnError = OnError.PAUSE
    backoff_s: float = 30.0
    poll_interval_s: float = 30.0
    verify_timeout_s: float = 600.0
    timeouts: Timeouts = field(default_factory=Timeouts)
    #: the maintenance window on this run's clock (None: any time)
    window: Calendar | None = None
    #: the first hosts alone, then a pause or a watch (:mod:`upgrade.core.engine.canary`)
    canary: Canary | None = None
    #: host failures the hosts phase tolerates, percent of its hosts (:mod:`.budget`)
    max_fail_hosts_percent: int = 0
    #: VMs the engine moved go back home (:mod:`upgrade.core.engine.placement`)
    restore_vm_placement: bool = False

    @classmethod
    def from_playbook(cls, playbook: Playbook) -> Policy:
        """The policy a playbook asks for."""
        return cls(retries=playbook.retries, on_error=playbook.on_error,
                   timeouts=playbook.timeouts, canary=playbook.canary,
                   max_fail_hosts_percent=playbook.max_fail_hosts_percent,
                   restore_vm_placement=playbook.hosts.restore_vm_placement)


class Timing:
    """Expected durations and timeouts of the operations of one inventory."""

    def __init__(self, inventory: Inventory, policy: Policy) -> None:
        self.durations = inventory.durations
        self.policy = policy
        self._running_vms = {h.id: len(h.running_vms) for h in inventory.hosts}
        self._hosts = max(1, len(inventory.hosts))

    def expected(self, item: Item) -> float:
        """How long ``item``'s current operation should take."""
        d = self.durations
        op = item.stage.op
        if op is Op.UPGRADE:
            kind = UNIT_PHASES.get(item.phase)
            return float(d.upgrade(kind)) if kind else 0.0
        if op is Op.ENTER_MAINTENANCE:
            return float(d.vmotion * self._running_vms.get(item.id, 0))
        return float({
            Op.PRECHECK: d.precheck, Op.POSTCHECK: d.postcheck, Op.UPLOAD: d.bundle_upload,
            Op.COORDINATOR: d.coordinator_upgrade, Op.EVACUATE: d.vmotion * 8,
            Op.RESTORE: d.vmotion * 8,
        }.get(op, 0))

    def timeout(self, item: Item) -> float:
        """How long ``item``'s current operation may take before it counts as failed."""
        t = self.policy.timeouts
        op = item.stage.op
        chosen: int | None = None
        if op is Op.UPGRADE and item.phase in UNIT_PHASES:
            chosen = {Phase.HOSTS: t.host_upgrade, Phase.EDGES: t.edge_upgrade,
                      Phase.CONTROLLERS: t.controller_upgrade,
                      Phase.MANAGER: t.manager_upgrade}[item.phase]
        elif op in (Op.ENTER_MAINTENANCE, Op.EVACUATE, Op.EXIT_MAINTENANCE, Op.RESTORE):
            chosen = t.maintenance
        elif op is Op.UPLOAD:
            chosen = t.bundle_upload
        elif op is Op.COORDINATOR:
            chosen = t.coordinator_upgrade
        elif op is Op.VERIFY:
            return self.policy.verify_timeout_s
        if chosen is not None:
            return float(chosen)
        expected = self.expected(item)
        if op in (Op.EVACUATE, Op.RESTORE):
            expected = float(self.durations.vmotion * self._hosts)
        return 2 * expected + TIMEOUT_MARGIN_S
