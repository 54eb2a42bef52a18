"""Cluster capacity: which host may enter maintenance, where evacuated VMs go, and when
they come home (``restore_vm_placement``).

A host enters maintenance only while its cluster keeps the capacity
(:func:`~upgrade.core.capacity.maintenance_capacity`) and, in a cluster with running VMs,
only when no VMs of the cluster are in motion.  :class:`Capacity` owns each cluster's
maintenance count, the hosts whose VMs are moving out or back, and where the engine
believes each powered-on VM runs; it reads the work items (never moves their lifecycle).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from upgrade.core.capacity import maintenance_capacity
from upgrade.core.engine import items as st
from upgrade.core.engine.items import Item
from upgrade.core.engine.machines import UnitState
from upgrade.core.engine.placement import homecoming
from upgrade.core.model import Drs, Host, Inventory, Op

# enum members read once (a member read off its class is a slow lookup, asked per event)
_D_FULLY_AUTOMATED, _O_ENTER_MAINTENANCE = Drs.FULLY_AUTOMATED, Op.ENTER_MAINTENANCE
_US_DONE = UnitState.DONE

Moves = tuple[tuple[str, str], ...]

#: a host's pipeline by (its VMs are evacuated by the engine, they come back): four shared
#: tuples rather than one per host (7 MiB on 100,000 hosts)
_HOST_PIPELINES = {
    (evacuate, restore): (*(st.ENTER_THEN_EVACUATE if evacuate else (st.ENTER,)), *st.UPGRADE,
                          st.EXIT, *((st.RESTORE,) if restore else ()))
    for evacuate in (False, True) for restore in (False, True)
}


class _Home(Mapping[str, tuple[str, ...]]):
    """Host -> the powered-on VMs it had when the run began (their home), read off the
    inventory when asked: it never changes, and a copy per host is 10 MiB on 100,000."""

    def __init__(self, hosts: Mapping[str, Host]) -> None:
        self._hosts = hosts

    def __getitem__(self, host: str) -> tuple[str, ...]:
        return tuple(vm.id for vm in self._hosts[host].running_vms)

    def __iter__(self) -> Iterator[str]:
        return iter(self._hosts)

    def __len__(self) -> int:
        return len(self._hosts)


class Capacity:
    """Maintenance slots, evacuation moves and homecomings of each cluster."""

    #: fields that change as the run goes (a snapshot keeps these; the rest is the inventory's)
    STATE: tuple[str, ...] = ("maintenance", "entering", "restoring", "running_vms")

    def __init__(self, inventory: Inventory, items: Mapping[str, Item], in_maintenance: bool,
                 restore_placement: bool) -> None:
        #: the run's work items, by id (read only)
        self.items = items
        #: hosts are upgraded in maintenance mode (else in place: no slot, no evacuation)
        self.in_maintenance = in_maintenance
        self.restore_placement = restore_placement
        self.clusters = {c.name: c for c in inventory.clusters}
        #: cluster -> how many of its hosts may be in maintenance at once (None: any)
        host_map = inventory.host_map
        self.limits = {c.name: maintenance_capacity(c, host_map) for c in inventory.clusters}
        #: cluster -> hosts in or entering maintenance
        self.maintenance: dict[str, int] = {}
        #: cluster -> hosts whose maintenance entry (and VMs' evacuation) has not ended yet
        self.entering: dict[str | None, set[str]] = {}  # (None: asked of any item)
        #: cluster -> hosts whose VMs are on their way back home
        self.restoring: dict[str, set[str]] = {}
        #: host -> the powered-on VMs the engine believes run there now (Host.running_vms
        #: spelt out: the tuple it makes per host is not needed here)
        self.running_vms = {h.id: [vm.id for vm in h.vms if vm.powered_on]
                            for h in inventory.hosts}
        #: host -> the powered-on VMs it had when the run began (their home)
        self.home: Mapping[str, tuple[str, ...]] = _Home(host_map)

    def host_pipeline(self, item: Item) -> tuple[st.Stage, ...]:
        """The stages of host ``item``'s upgrade, as its cluster asks (built at its start)."""
        if not self.in_maintenance:
            return st.UPGRADE
        assert item.cluster is not None
        manual = self.clusters[item.cluster].drs is not _D_FULLY_AUTOMATED
        # its VMs come home even when a retry finds them gone already (a pipeline built anew)
        back = bool(manual and self.restore_placement and self.home[item.id])
        return _HOST_PIPELINES[bool(manual and self.running_vms[item.id]), back]

    def may_enter(self, item: Item) -> bool:
        """May ``item`` start now, as far as its cluster's maintenance capacity goes?"""
        if not self.in_maintenance or item.holds_maintenance or item.cluster is None:
            return True
        cluster = item.cluster
        limit = self.limits[cluster]
        if limit is None:
            return True
        if self.entering.get(cluster) or self.restoring.get(cluster):
            return False  # VMs in motion land only on hosts that stay out of maintenance
        return self.maintenance.get(cluster, 0) < limit

    def hold(self, item: Item) -> None:
        """``item`` starts entering maintenance: it takes one of its cluster's slots."""
        item.holds_maintenance = True
        assert item.cluster is not None
        self.maintenance[item.cluster] = self.maintenance.get(item.cluster, 0) + 1
        self.entering.setdefault(item.cluster, set()).add(item.id)

    def release(self, item: Item) -> None:
        """``item`` is out of maintenance (or done): its slot is free."""
        if item.holds_maintenance:
            item.holds_maintenance = False
            assert item.cluster is not None
            self.maintenance[item.cluster] -= 1

    def entered(self, item: Item) -> bool:
        """Once no maintenance entry is left in its pipeline, ``item`` moves no more VMs;
        True when that frees its cluster (a host of it may enter now)."""
        entering = self.entering.get(item.cluster) if item.cluster is not None else None
        if entering and item.id in entering and all(
                s.op is not _O_ENTER_MAINTENANCE for s in item.pipeline[item.index:]):
            entering.discard(item.id)
            return True
        return False

    def evacuation_moves(self, item: Item) -> Moves:
        """The (vm, destination) moves that empty host ``item`` (upgraded hosts first, then
        the emptiest); the engine's picture of where VMs run follows them."""
        assert item.cluster is not None
        hosts = self.clusters[item.cluster].hosts
        # a host the plan leaves alone (already at the target) is not an item: it never
        # enters maintenance, and counts as upgraded
        others = {h: self.items.get(h) for h in hosts if h != item.id}
        candidates = [h for h, i in others.items() if i is None or not i.holds_maintenance]
        if not candidates:
            return ()
        upgraded = [h for h in candidates
                    if (i := others[h]) is None or i.state is _US_DONE]
        pool = upgraded or candidates
        order = {h: i for i, h in enumerate(hosts)}
        running = self.running_vms
        moves = []
        for vm in running[item.id]:
            dst = min(pool, key=lambda h: (len(running[h]), order[h]))
            running[dst].append(vm)
            moves.append((vm, dst))
        running[item.id] = []
        return tuple(moves)

    def evacuating(self, item: Item) -> bool:
        """True while a host of ``item``'s cluster is still entering maintenance (its VMs
        may be in motion): a restore waits."""
        assert item.cluster is not None
        return any(self.items[h].active for h in self.entering.get(item.cluster, ()))

    def homecoming(self, item: Item) -> Moves:
        """The moves that bring ``item``'s original VMs back (chosen once, by the caller)."""
        return homecoming(item.id, self.home, self.running_vms)

    def restore_begins(self, item: Item) -> None:
        """``item``'s VMs start coming home: no host of its cluster enters maintenance."""
        assert item.cluster is not None
        self.restoring.setdefault(item.cluster, set()).add(item.id)

    def restore_ends(self, item: Item) -> None:
        """``item`` moves no VMs home any more (done, or failed)."""
        if item.cluster is not None:
            self.restoring.get(item.cluster, set()).discard(item.id)
