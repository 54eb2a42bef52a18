"""DESIGN section 5's safety invariants, checked on a simulated world's snapshot.

One checker for every kind of test: the in-memory property tests pass the
:class:`~upgrade.core.plan.Plan` they drove, the CLI tests the plan JSON the run
recorded (``state_dir/plan.json``, the shape of ``plan --format json``), both with the
world as ``sim show --format json`` prints it (:meth:`~upgrade.sim.world.World.snapshot`).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from upgrade.core.model import Inventory, UpgradeMode
from upgrade.core.plan import Phase, Plan

Interval = tuple[float, float]  # half-open [start, end); an open end is +inf
#: the unit kind each unit phase upgrades
KIND_OF_PHASE = {Phase.HOSTS.value: "host", Phase.EDGES.value: "edge",
                 Phase.CONTROLLERS.value: "controller", Phase.MANAGER.value: "manager"}


def unit_order(plan: Plan | Mapping[str, Any]) -> tuple[str, ...]:
    """The unit kinds in the order the plan upgrades them: its flow's (2.1-2.3: host, edge,
    controller, manager; 2.3.1 -> 2.4: host, edge, manager; 2.4 -> 2.5: edge, host,
    manager; upgrade/compat/flows.yaml), from a :class:`Plan` or its JSON."""
    names = ([p.name.value for p in plan.phases] if isinstance(plan, Plan)
             else [str(p["name"]) for p in plan["phases"]])
    return tuple(KIND_OF_PHASE[n] for n in names if n in KIND_OF_PHASE)


@dataclass(frozen=True)
class HostGroup:
    """One host group of the plan: its hosts and how many may be busy at once."""

    name: str
    units: tuple[str, ...]
    max_parallel: int


@dataclass(frozen=True)
class Limits:
    """What the plan allows the hosts phase, as the invariants need it."""

    groups: tuple[HostGroup, ...]
    max_parallel_groups: int
    maintenance_mode: bool

    @classmethod
    def of(cls, plan: Plan | Mapping[str, Any]) -> Limits:
        """The limits of a :class:`Plan` or of its JSON (``plan --format json``)."""
        if isinstance(plan, Plan):
            hosts = plan.phase(Phase.HOSTS)
            return cls(tuple(HostGroup(g.name, g.units, g.max_parallel) for g in hosts.groups),
                       hosts.max_parallel_groups,
                       plan.upgrade_mode is UpgradeMode.MAINTENANCE)
        phase = next(p for p in plan["phases"] if p["name"] == Phase.HOSTS.value)
        return cls(tuple(HostGroup(g["name"], tuple(g["units"]), g["max_parallel"])
                         for g in phase["groups"]),
                   phase["max_parallel_groups"],
                   plan["upgrade_mode"] == UpgradeMode.MAINTENANCE.value)


def max_concurrent(intervals: Iterable[Interval]) -> int:
    """How many half-open intervals overlap at the busiest moment (one ending when another
    starts does not overlap it)."""
    points = sorted((t, d) for s, e in intervals if e > s for t, d in ((s, 1), (e, -1)))
    best = now = 0
    for _, delta in points:  # at equal times ends (-1) sort before starts (+1)
        now += delta
        best = max(best, now)
    return best


def _iv(pairs: Iterable[Mapping[str, Any]]) -> list[Interval]:
    return [(p["start"], math.inf if p["end"] is None else p["end"]) for p in pairs]


def _overlap(a: Interval, b: Interval) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def _merge(intervals: Iterable[Interval]) -> list[Interval]:
    out: list[Interval] = []
    for s, e in sorted(intervals):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def vm_residence(inventory: Inventory,
                 snapshot: Mapping[str, Any]) -> dict[str, list[tuple[str, Interval]]]:
    """For each powered-on VM, the hosts it ran on with when, from the world's VM moves."""
    initial = {vm.id: h.id for h in inventory.hosts for vm in h.vms}
    out: dict[str, list[tuple[str, Interval]]] = {}
    for vm in snapshot["vms"]:
        if not vm["powered_on"]:
            continue
        where, since, stays = initial[vm["id"]], -math.inf, []
        for move in vm["moves"]:
            assert move["from"] == where, f"{vm['id']} moved from {move['from']}, was on {where}"
            stays.append((where, (since, move["at"])))
            where, since = move["to"], move["at"]
        stays.append((where, (since, math.inf)))
        assert where == vm["host"], f"{vm['id']}: moves end on {where}, world says {vm['host']}"
        out[vm["id"]] = stays
    return out


def check_invariants(plan: Plan | Mapping[str, Any], inventory: Inventory,
                     snapshot: Mapping[str, Any], *, complete: bool = False,
                     upgrade_counts: Mapping[str, int] | None = None,
                     maintenance: bool = True) -> None:
    """DESIGN section 5 on a world snapshot; raises AssertionError naming what broke.

    Always (at a stop too): the world holds the inventory's units and VMs, no VM lost,
    powered on or off, or moved out of its cluster; hosts busy (in maintenance or
    upgrading) at once never above a group's ``max_parallel``, groups busy at once never
    above ``max_parallel_groups``, never every host of a cluster with running VMs in
    maintenance; in maintenance mode no powered-on VM on a host while it upgrades and
    every host upgrade inside one of its maintenance intervals; never two edges of one
    edge cluster upgrading at once; the Upgrade Coordinator before any unit, then the
    components strictly in the plan's order (:func:`unit_order`).  With ``complete``:
    every unit the plan's flow upgrades at the target version, upgraded as often as
    ``upgrade_counts`` says (default once), a unit of a kind it merges (2.4's controllers)
    never upgraded; nothing left in maintenance or running.  ``maintenance=False``: the
    world does not model maintenance mode (the NSX-T emulator's: vCenter keeps it), so
    its rules are not checked.
    """
    limits = Limits.of(plan)
    units = {u["id"]: u for u in snapshot["units"]}
    assert set(units) == set(inventory.units()), "the world's units are the inventory's"
    upgrades = {u: _iv(x["upgrades"]) for u, x in units.items()}
    maintenances = {u: _iv(x["maintenance"]) for u, x in units.items()}
    busy = {h.id: _merge(upgrades[h.id] + maintenances[h.id]) for h in inventory.hosts}
    _check_vms(inventory, snapshot)
    _check_hosts(limits, inventory, busy, maintenances)
    if limits.maintenance_mode and maintenance:
        _check_maintenance_mode(inventory, snapshot, upgrades, maintenances)
    for ec in inventory.edge_clusters:
        n = max_concurrent(iv for e in ec.edges for iv in upgrades[e])
        assert n <= 1, f"edge cluster {ec.name}: {n} edges upgrading at once"
    order = unit_order(plan)
    _check_order(order, snapshot, units, busy, upgrades)
    if complete:
        counts = upgrade_counts or {}
        for u, x in units.items():
            if x["kind"] not in order:  # merged into another unit by the flow (2.4's controllers)
                assert x["upgrade_count"] == counts.get(u, 0), \
                    f"{u} ({x['kind']}: not upgraded in this flow) upgraded " \
                    f"{x['upgrade_count']} times"
                continue
            assert x["version"] == snapshot["target_version"], f"{u} is at {x['version']}"
            assert x["upgrade_count"] == counts.get(u, 1), \
                f"{u} upgraded {x['upgrade_count']} times, expected {counts.get(u, 1)}"
            assert all(e != math.inf for _, e in upgrades[u]), f"{u} is still upgrading"
        left = [u for u, x in units.items()
                if x["in_maintenance"] or any(e == math.inf for _, e in maintenances[u])]
        assert not left, f"left in maintenance: {left}"


def _check_vms(inventory: Inventory, snapshot: Mapping[str, Any]) -> None:
    """No VM lost or added, none powered on or off, none moved out of its cluster."""
    cluster_of = {h.id: h.cluster for h in inventory.hosts}
    start = {vm.id: (h.id, vm.powered_on) for h in inventory.hosts for vm in h.vms}
    vms = {v["id"]: v for v in snapshot["vms"]}
    assert set(vms) == set(start), f"the set of VMs changed: {sorted(set(vms) ^ set(start))}"
    for ident, vm in vms.items():
        home, powered_on = start[ident]
        assert vm["powered_on"] == powered_on, f"{ident} powered {vm['powered_on']}"
        assert cluster_of[vm["host"]] == cluster_of[home], f"{ident} left its cluster: {vm}"


def _check_hosts(limits: Limits, inventory: Inventory, busy: Mapping[str, list[Interval]],
                 maintenance: Mapping[str, list[Interval]]) -> None:
    """Per group, groups at once, clusters never emptied of running VMs' homes."""
    group_spans: list[Interval] = []
    for group in limits.groups:
        spans = [iv for h in group.units for iv in busy[h]]
        n = max_concurrent(spans)
        assert n <= group.max_parallel, \
            f"group {group.name}: {n} hosts busy at once, plan allows {group.max_parallel}"
        group_spans += _merge(spans)
    n = max_concurrent(group_spans)
    assert n <= limits.max_parallel_groups, \
        f"{n} host groups busy at once, plan allows {limits.max_parallel_groups}"
    for cluster in inventory.clusters:
        if any(inventory.host(h).running_vms for h in cluster.hosts):
            n = max_concurrent(iv for h in cluster.hosts for iv in maintenance[h])
            assert n < len(cluster.hosts), \
                f"cluster {cluster.name}: all {n} hosts in maintenance with VMs running"


def _check_maintenance_mode(inventory: Inventory, snapshot: Mapping[str, Any],
                            upgrades: Mapping[str, list[Interval]],
                            maintenance: Mapping[str, list[Interval]]) -> None:
    """No powered-on VM on a host while it upgrades; host upgrades inside maintenance."""
    for vm, stays in vm_residence(inventory, snapshot).items():
        for host, stay in stays:
            for up in upgrades.get(host, ()):
                assert not _overlap(stay, up), \
                    f"VM {vm} powered on on {host} during {host}'s upgrade {up}"
    for h in inventory.hosts:
        for up in upgrades[h.id]:
            assert any(m[0] <= up[0] and up[1] <= m[1] for m in maintenance[h.id]), \
                f"{h.id} upgraded {up} outside maintenance {maintenance[h.id]}"


def _check_order(order: tuple[str, ...], snapshot: Mapping[str, Any],
                 units: Mapping[str, Mapping[str, Any]], busy: Mapping[str, list[Interval]],
                 upgrades: Mapping[str, list[Interval]]) -> None:
    """The Upgrade Coordinator first, then the unit kinds of ``order`` in turn."""
    kinds: dict[str, list[Interval]] = defaultdict(list)
    for u, x in units.items():
        kinds[x["kind"]] += busy[u] if x["kind"] == "host" else upgrades[u]
    for before, after in pairwise(order):
        if kinds[before] and kinds[after]:
            last = max(e for _, e in kinds[before])
            first = min(s for s, _ in kinds[after])
            assert last <= first, \
                f"a {after} started at {first} before every {before} was done ({last})"
    coordinator = [o for o in snapshot.get("operations", []) if o["op"] == "coordinator"]
    first_unit = min((s for spans in kinds.values() for s, _ in spans), default=None)
    if coordinator and first_unit is not None:
        end = coordinator[0]["end"]
        assert end is not None and end <= first_unit, \
            f"a unit started at {first_unit} before the Upgrade Coordinator was done ({end})"
