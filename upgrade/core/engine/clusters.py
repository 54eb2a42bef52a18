"""Clusters and their VMs: which host may enter maintenance, where evacuated VMs go, and
when they come home (``restore_vm_placement``).

A host enters maintenance only while its cluster keeps the capacity
(:func:`~upgrade.core.capacity.maintenance_capacity`) and, in a cluster with running VMs,
only when no VMs of the cluster are in motion.
"""

from __future__ import annotations

from upgrade.core.engine.items import Item, Waiting
from upgrade.core.engine.machines import UnitState
from upgrade.core.engine.messages import Action, Wake
from upgrade.core.engine.placement import homecoming
from upgrade.core.engine.state import EngineState
from upgrade.core.model import Op
from upgrade.core.model import UpgradeMode as Mode


class ClusterRules(EngineState):
    """Maintenance slots, evacuation moves and homecomings of each cluster."""

    def _evacuation_moves(self, item: Item) -> tuple[tuple[str, str], ...]:
        assert item.cluster is not None
        hosts = self._cluster[item.cluster].hosts
        # a host the plan leaves alone (already at the target) is not an item: it never
        # enters maintenance, and counts as upgraded
        others = {h: self.items.get(h) for h in hosts if h != item.id}
        candidates = [h for h, i in others.items() if i is None or not i.holds_maintenance]
        if not candidates:
            return ()
        upgraded = [h for h in candidates
                    if (i := others[h]) is None or i.state is UnitState.DONE]
        pool = upgraded or candidates
        order = {h: i for i, h in enumerate(hosts)}
        moves = []
        for vm in self._running_vms[item.id]:
            dst = min(pool, key=lambda h: (len(self._running_vms[h]), order[h]))
            self._running_vms[dst].append(vm)
            moves.append((vm, dst))
        self._running_vms[item.id] = []
        return tuple(moves)

    def _release_maintenance(self, item: Item) -> None:
        if item.holds_maintenance:
            item.holds_maintenance = False
            assert item.cluster is not None
            self._maintenance[item.cluster] -= 1

    def _begin_restore(self, item: Item, out: list[Action]) -> bool:
        """Choose (once) the moves that bring ``item``'s VMs home; False: not yet (an
        evacuation of its cluster is under way: try again one poll interval later; a host
        that failed while entering moves nothing and is not waited for)."""
        assert item.cluster is not None
        if item.restores is None:
            if any(self.items[h].active for h in self._entering.get(item.cluster, ())):
                item.waiting = Waiting.TIMER
                out.append(Wake(self.now + self.policy.poll_interval_s, f"restore|{item.id}"))
                return False
            item.restores = homecoming(item.id, self._home, self._running_vms)
            item.op_started = self.now  # its deadline runs from now, not from the wait
            item.deadline = self.now + self.timing.timeout(item)
        self._restoring.setdefault(item.cluster, set()).add(item.id)
        item.start_attempts += 1
        item.waiting = Waiting.START
        return True

    def _entered(self, item: Item) -> None:
        """Once no maintenance entry is left in its pipeline, ``item`` moves no more VMs."""
        if item.cluster is not None and all(
                s.op is not Op.ENTER_MAINTENANCE for s in item.pipeline[item.index:]):
            self._entering.get(item.cluster, set()).discard(item.id)

    def _may_enter_maintenance(self, item: Item) -> bool:
        if (self.plan.upgrade_mode is not Mode.MAINTENANCE or item.holds_maintenance
                or item.cluster is None):
            return True
        cluster = item.cluster
        limit = self._capacity[cluster]
        if limit is None:
            return True
        if self._entering.get(cluster) or self._restoring.get(cluster):
            return False  # VMs in motion land only on hosts that stay out of maintenance
        return self._maintenance.get(cluster, 0) < limit
