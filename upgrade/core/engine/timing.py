"""How long the engine expects each operation to take, and how long it waits before giving up.

Pure: durations come from the inventory, limits from the playbook (:class:`Policy`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sized
from dataclasses import dataclass, field

from upgrade.core.engine.items import Item
from upgrade.core.model import Canary, Inventory, OnError, Op, Playbook, Timeouts
from upgrade.core.plan import UNIT_PHASES, Phase
from upgrade.core.window import Calendar

# members read off their class once (that is a slow lookup, and every start and poll asks)
_UPGRADE, _ENTER = Op.UPGRADE, Op.ENTER_MAINTENANCE

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
    """Expected durations and timeouts of the operations of one inventory.

    The tables are made once: every start and every poll asks.
    """

    def __init__(self, inventory: Inventory, policy: Policy,
                 running_vms: Mapping[str, Sized] | None = None) -> None:
        """``running_vms``: host -> its powered-on VMs as the run begins, if a part of the
        engine has them already (counted from the inventory otherwise)."""
        self.durations = d = inventory.durations
        self.policy = policy
        self._running_vms = {h.id: len(h.running_vms) for h in inventory.hosts} \
            if running_vms is None else {h: len(vms) for h, vms in running_vms.items()}
        self._hosts = max(1, len(inventory.hosts))
        #: the expected duration of the operations that take as long on any unit
        self._expected: dict[Op, float] = {
            Op.PRECHECK: float(d.precheck), Op.POSTCHECK: float(d.postcheck),
            Op.UPLOAD: float(d.bundle_upload), Op.COORDINATOR: float(d.coordinator_upgrade),
            Op.EVACUATE: float(d.vmotion * 8), Op.RESTORE: float(d.vmotion * 8),
        }
        #: phase -> the expected duration of an upgrade in it
        self._upgrade = {phase: float(d.upgrade(kind)) for phase, kind in UNIT_PHASES.items()}
        t = policy.timeouts
        set_by_playbook: dict[tuple[Op, Phase | None], int | None] = {
            (Op.UPGRADE, Phase.HOSTS): t.host_upgrade,
            (Op.UPGRADE, Phase.EDGES): t.edge_upgrade,
            (Op.UPGRADE, Phase.CONTROLLERS): t.controller_upgrade,
            (Op.UPGRADE, Phase.MANAGER): t.manager_upgrade,
            **{(op, None): t.maintenance for op in (
                Op.ENTER_MAINTENANCE, Op.EVACUATE, Op.EXIT_MAINTENANCE, Op.RESTORE)},
            (Op.UPLOAD, None): t.bundle_upload,
            (Op.COORDINATOR, None): t.coordinator_upgrade,
        }
        #: (operation, phase of an upgrade) -> its timeout, where it is not a default
        self._timeouts = {key: float(limit) for key, limit in set_by_playbook.items()
                          if limit is not None}
        self._timeouts[(Op.VERIFY, None)] = policy.verify_timeout_s
        #: phase -> operation -> the timeout of an operation whose timeout is the same on
        #: every unit of the phase (all but a maintenance entry): one lookup per start
        self.fixed = {phase: {op: self._limit(op, phase, "") for op in Op if op is not _ENTER}
                       for phase in Phase}
        #: a maintenance entry's timeout set by the playbook (None: as its VMs say)
        self._enter_limit = self._timeouts.get((_ENTER, None))

    def expected(self, item: Item) -> float:
        """How long ``item``'s current operation should take."""
        return self._duration(item.pipeline[item.index].op, item.phase, item.id)

    def _duration(self, op: Op, phase: Phase, unit: str) -> float:
        if op is _UPGRADE:
            return self._upgrade.get(phase, 0.0)
        if op is _ENTER:
            return float(self.durations.vmotion * self._running_vms.get(unit, 0))
        return self._expected.get(op, 0.0)

    def timeout(self, item: Item) -> float:
        """How long ``item``'s current operation may take before it counts as failed."""
        op = item.pipeline[item.index].op
        if op is not _ENTER:  # the same for every item of a phase: made once
            return self.fixed[item.phase][op]
        if self._enter_limit is not None:  # (what _limit says of an entry, spelt out)
            return self._enter_limit
        return 2 * float(self.durations.vmotion * self._running_vms.get(item.id, 0)) + \
            TIMEOUT_MARGIN_S

    def _limit(self, op: Op, phase: Phase, unit: str) -> float:
        chosen = self._timeouts.get((op, phase if op is _UPGRADE else None))
        if chosen is not None:
            return chosen
        if op in (Op.EVACUATE, Op.RESTORE):
            return 2 * float(self.durations.vmotion * self._hosts) + TIMEOUT_MARGIN_S
        return 2 * self._duration(op, phase, unit) + TIMEOUT_MARGIN_S
