"""Where the simulated VMs run, and the moves DRS and the orchestrator make of them.

:class:`Placement` keeps each host's VMs and, per cluster, its hosts ordered by how
many powered-on VMs they run, so that DRS picks the least loaded hosts without
scanning the cluster for every host entering maintenance (a 1,000-host cluster
would cost a million looks per pass).  It also checks the moves an orchestrator asks
for: an evacuation stays in the VM's cluster, and VMs come back only to their home.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Callable, Iterable, Mapping

from upgrade.core.model import Cluster
from upgrade.errors import AdapterError, TransientAdapterError
from upgrade.sim.records import UnitRecord, VmRecord

#: a host that cannot receive VMs now: in maintenance mode, or entering it
Busy = Callable[[str], bool]
Moves = list[tuple[str, str]]


class Placement:
    """Every VM's host, each host's VMs, and each cluster's hosts by powered-on load."""

    def __init__(self, clusters: Iterable[Cluster], vms: dict[str, VmRecord],
                 history: bool = True) -> None:
        #: record each VM's moves (``VmRecord.moves``); a world no store writes and no one
        #: shows (the estimate) keeps none: 400,000 records on 100,000 hosts (issue 23)
        self._history = history
        #: cluster -> its hosts, in inventory order (DRS breaks ties by this order)
        self._hosts: dict[str, tuple[str, ...]] = {}
        self._members: dict[str, frozenset[str]] = {}
        self._cluster_of: dict[str, str] = {}
        self._order: dict[str, int] = {}
        for cluster in clusters:
            self._hosts[cluster.name] = cluster.hosts
            self._members[cluster.name] = frozenset(cluster.hosts)
            for order, host in enumerate(cluster.hosts):
                self._cluster_of[host] = cluster.name
                self._order[host] = order
        self.vms = vms
        #: host -> its VMs, in the order they arrived (a list: a host holds a few, and a
        #: dict per host costs 10 MiB more on 100,000 hosts)
        self._on_host: dict[str, list[str]] = {}
        #: host -> how many powered-on VMs it runs
        self._load: dict[str, int] = {}
        #: cluster -> load -> positions (in the cluster) of the hosts with that load, sorted
        self._by_load: dict[str, dict[int, list[int]]] = {}
        self.reindex(vms)

    def reindex(self, vms: dict[str, VmRecord]) -> None:
        """Rebuild every index from ``vms`` (after a store replaced or refilled them)."""
        self.vms = vms
        on_host: dict[str, list[str]] = {h: [] for h in self._cluster_of}
        self._on_host = on_host
        self._load = loads = dict.fromkeys(self._cluster_of, 0)
        for vm in vms.values():
            host = vm.host
            held = on_host.get(host)
            if held is None:
                held = on_host[host] = []
            held.append(vm.id)  # each VM once: ids are keys
            if vm.powered_on:
                loads[host] = loads.get(host, 0) + 1
        by_load: dict[str, dict[int, list[int]]] = {name: {} for name in self._hosts}
        self._by_load = by_load
        order = self._order
        for host, cluster in self._cluster_of.items():  # cluster by cluster, in order...
            by_load[cluster].setdefault(loads[host], []).append(order[host])
        for buckets in by_load.values():  # ... so each list is sorted already, or made so
            for bucket in buckets.values():
                bucket.sort()

    # -- VMs --------------------------------------------------------------------------------

    def running(self, host: str) -> list[str]:
        """The powered-on VMs on ``host``, in the order they arrived."""
        vms = self.vms
        return [v for v in self._on_host.get(host, ()) if vms[v].powered_on]

    def has_running(self, host: str) -> bool:
        """True when ``host`` runs a powered-on VM."""
        return self._load.get(host, 0) > 0

    def move(self, vm_id: str, dst: str, at: float) -> bool:
        """Move ``vm_id`` to ``dst`` at ``at``; False when it is there already."""
        return bool(self.move_all([(vm_id, dst)], at, 0.0))

    def move_all(self, moves: Moves, start: float, step: float) -> list[str]:
        """Make ``moves`` in turn, the i-th (from 1) at ``start + i * step`` (a host's
        evacuation); the VMs moved (not there already).

        Each host's load changes once, by its sum: the buckets end as if each VM had moved
        alone (each is sorted, and empty ones go), with fewer bisects.
        """
        vms, on_host, history = self.vms, self._on_host, self._history
        moved: list[str] = []
        shifts: dict[str, int] = {}
        for i, (vm_id, dst) in enumerate(moves, 1):
            vm = vms[vm_id]
            src = vm.host
            if src == dst:
                continue
            if history:
                vm.moves.append((start + i * step, src, dst))
            leaving = on_host[src]
            if vm_id in leaving:
                leaving.remove(vm_id)
            on_host.setdefault(dst, []).append(vm_id)
            if vm.powered_on:
                shifts[src] = shifts.get(src, 0) - 1
                shifts[dst] = shifts.get(dst, 0) + 1
            vm.host = dst
            moved.append(vm_id)
        for host, delta in shifts.items():
            if delta:
                self._shift(host, delta)
        return moved

    def _shift(self, host: str, delta: int) -> None:
        loads = self._load
        load = loads.get(host, 0)
        loads[host] = load + delta
        cluster = self._cluster_of.get(host)
        if cluster is None:
            return
        buckets = self._by_load[cluster]
        order = self._order[host]
        bucket = buckets[load]
        del bucket[bisect_left(bucket, order)]
        if not bucket:
            del buckets[load]
        insort(buckets.setdefault(load + delta, []), order)

    # -- DRS --------------------------------------------------------------------------------

    def least_loaded(self, cluster: str, count: int, skip: Busy, apart_from: str = "") -> list[str]:
        """Up to ``count`` hosts of ``cluster`` other than ``apart_from`` and not skipped,
        fewest powered-on VMs first (ties in inventory order)."""
        hosts = self._hosts[cluster]
        buckets = self._by_load[cluster]
        found: list[str] = []
        for load in sorted(buckets):
            for order in buckets[load]:
                host = hosts[order]
                if host != apart_from and not skip(host):
                    found.append(host)
                    if len(found) == count:
                        return found
        return found

    def drs_evacuation(self, cluster: str, host: str, busy: Busy) -> Moves:
        """Where fully automated DRS moves ``host``'s powered-on VMs: each to the least
        loaded host of the cluster that is not ``busy``, counting the VMs placed so far.

        Only the ``len(VMs)`` least loaded hosts can receive one (each VM placed before
        it raises one host's load by one), so only they are looked at.
        """
        running = self.running(host)
        if not running:
            return []
        targets = self.least_loaded(cluster, len(running), busy, apart_from=host)
        if not targets:
            raise TransientAdapterError(
                f"DRS has no host in {cluster} to evacuate {host}'s powered-on VMs to"
            )
        load = {h: (self._load[h], self._order[h]) for h in targets}
        planned = []
        for vm in running:
            dst = min(targets, key=load.__getitem__)
            load[dst] = (load[dst][0] + 1, load[dst][1])
            planned.append((vm, dst))
        return planned

    # -- the orchestrator's moves -----------------------------------------------------------

    def evacuation(self, cluster: str, host: str, moves: Iterable[tuple[str, str]],
                   busy: Busy) -> Moves:
        """The asked ``moves`` of ``host``'s powered-on VMs still to make, checked: within
        ``cluster`` (else an error) and to hosts that can receive them (else refused)."""
        running = self.running(host)
        todo = [(vm, dst) for vm, dst in moves if vm in running]
        members = self._members[cluster]
        for _, dst in todo:
            if dst not in members or dst == host:
                raise AdapterError(f"cannot move a VM from {host} to {dst}: not in its cluster")
            if busy(dst):
                raise TransientAdapterError(f"{dst} is in maintenance mode; cannot receive VMs")
        return todo

    def homecoming(self, home: str, moves: Iterable[tuple[str, str]],
                   units: Mapping[str, UnitRecord], busy: Busy) -> Moves:
        """The asked ``moves`` of VMs back to ``home`` still to make, checked: each to
        ``home`` from a host of its cluster (else an error), and refused while ``home``
        is ``busy``."""
        moves = tuple(moves)
        unknown = [vm for vm, _ in moves if vm not in self.vms]
        if unknown:
            raise AdapterError(f"cannot move VM {unknown[0]} back to {home}: no such VM")
        todo = [(vm, dst) for vm, dst in moves if self.vms[vm].host != dst]
        for vm, dst in todo:
            if dst != home or units[self.vms[vm].host].group != units[home].group:
                raise AdapterError(f"cannot move VM {vm} back to {dst}: not {home} of its "
                                   "cluster")
        if todo and busy(home):
            raise TransientAdapterError(f"{home} is in maintenance mode; cannot take its VMs "
                                        "back")
        return todo
