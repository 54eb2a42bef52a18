"""Test helpers for the pure core: build inputs as objects, and drive them in memory.

* :func:`make_inventory` / :func:`make_playbook` build model objects directly;
  :func:`cases` and :func:`fault_sets` are hypothesis strategies over them.
* :class:`Run` is the "fake peer" wiring (h11's ``tests/helpers``): the pure
  engine against an in-memory :class:`~upgrade.sim.world.World` on a virtual
  clock, driven by the shipped :func:`upgrade.sim.drive.drive` (the estimate's
  loop), with every trace kept so invariants can look at the whole history
  across pauses and resumes.
* :data:`SETTINGS` and :func:`fault_free` are what the property tests share.

DESIGN section 5's invariants are checked by :mod:`tests.invariants`; crashes and
resumes through the shipped runner, replay and reconciliation by :mod:`tests.crash_support`.
"""

from __future__ import annotations

import heapq
import os
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from itertools import pairwise
from typing import Any, TypeVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from upgrade.core.engine.core import Engine
from upgrade.core.engine.machines import RunState, UnitState
from upgrade.core.engine.messages import Action, Event, Notice, Resumed, encode
from upgrade.core.engine.timing import Policy
from upgrade.core.model import (
    BUNDLE,
    COORDINATOR,
    SYSTEM,
    Bundle,
    Cluster,
    Drs,
    EdgeCluster,
    Fault,
    FaultKind,
    Host,
    HostGroupSpec,
    HostSettings,
    Inventory,
    InventorySpec,
    Mode,
    OnError,
    Op,
    Playbook,
    UpgradeMode,
    Vm,
)
from upgrade.core.plan import Phase, Plan, build_plan
from upgrade.core.versions import Version
from upgrade.sim.drive import Dispatcher, Trace, drive
from upgrade.sim.world import World

T = TypeVar("T")
SOURCE = Version.parse("2.1.0.0")
TARGET = Version.parse("2.3.0.0")
HOST_OPS = (Op.ENTER_MAINTENANCE, Op.EVACUATE, Op.UPGRADE, Op.EXIT_MAINTENANCE)
#: safety net: a driven run that needs more steps than this is looping
MAX_STEPS = 200_000
#: hypothesis examples per property; ``ENGINE_EXAMPLES=2000`` searches deeper
EXAMPLES = int(os.environ.get("ENGINE_EXAMPLES", "40"))
#: the settings of every property test of the engine
SETTINGS = settings(max_examples=EXAMPLES, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# -- building inputs ----------------------------------------------------------------------------


def make_inventory(
    clusters: Sequence[tuple[Drs, Sequence[Sequence[bool]]]] = (
        (Drs.FULLY_AUTOMATED, ((True,), ())),
    ),
    edge_clusters: Sequence[int] = (2,),
    controllers: int = 1,
    faults: Iterable[Fault] = (),
) -> Inventory:
    """An inventory: ``clusters`` gives each cluster's DRS level and, per host, its VMs'
    power states; ``edge_clusters`` the size of each edge cluster.

    Hosts are ``esx-<c>-<h>``, VMs ``vm-<c>-<h>-<i>``, edges ``edge-<e>-<i>``,
    controllers ``ctrl-<i>``, the manager ``nsx-mgr``.
    """
    cluster_list: list[Cluster] = []
    hosts: list[Host] = []
    for c, (drs, host_vms) in enumerate(clusters):
        ids = []
        for h, powered in enumerate(host_vms):
            ident = f"esx-{c}-{h}"
            vms = tuple(Vm(f"vm-{c}-{h}-{i}", on) for i, on in enumerate(powered))
            hosts.append(Host(ident, f"cluster-{c}", vms))
            ids.append(ident)
        cluster_list.append(Cluster(f"cluster-{c}", drs, tuple(ids)))
    edges = tuple(
        EdgeCluster(f"edge-cluster-{e}", tuple(f"edge-{e}-{i}" for i in range(size)))
        for e, size in enumerate(edge_clusters)
    )
    return Inventory(
        version=SOURCE,
        manager="nsx-mgr",
        controllers=tuple(f"ctrl-{i}" for i in range(controllers)),
        edge_clusters=edges,
        clusters=tuple(cluster_list),
        hosts=tuple(hosts),
        faults=tuple(faults),
    )


def make_playbook(
    *,
    mode: Mode = Mode.SERIAL,
    max_parallel: int = 5,
    max_parallel_groups: int = 5,
    upgrade_mode: UpgradeMode = UpgradeMode.MAINTENANCE,
    pause_after_each_group: bool = False,
    edges_mode: Mode = Mode.PARALLEL,
    on_error: OnError = OnError.PAUSE,
    retries: int = 2,
) -> Playbook:
    """A playbook for the simulated adapter with the given settings."""
    return Playbook(
        name="test",
        target_version=TARGET,
        bundle=Bundle(url="https://example.invalid/bundle.mub"),
        inventory=InventorySpec("simulated", "inventory.yaml"),
        hosts=HostSettings(mode, max_parallel, max_parallel_groups, upgrade_mode,
                           pause_after_each_group),
        edges_mode=edges_mode,
        on_error=on_error,
        retries=retries,
    )


@dataclass(frozen=True)
class Case:
    """One generated input: an inventory (maybe with faults) and a playbook."""

    inventory: Inventory
    playbook: Playbook

    @property
    def plan(self) -> Plan:
        """The plan (without estimates)."""
        return build_plan(self.playbook, self.inventory)

    def with_faults(self, faults: Iterable[Fault]) -> Case:
        """The same case with these faults injected."""
        return replace(self, inventory=replace(self.inventory, faults=tuple(faults)))

    def run(self) -> Run:
        """A fresh engine and world for this case."""
        return Run.of(self.plan, self.inventory, self.playbook)


@st.composite
def playbooks(draw: st.DrawFn) -> Playbook:
    """A random playbook: every setting the engine reads."""
    return make_playbook(
        mode=draw(st.sampled_from(Mode)),
        max_parallel=draw(st.integers(1, 5)),
        max_parallel_groups=draw(st.integers(1, 5)),
        upgrade_mode=draw(st.sampled_from(UpgradeMode)),
        pause_after_each_group=draw(st.booleans()),
        edges_mode=draw(st.sampled_from(Mode)),
        on_error=draw(st.sampled_from(OnError)),
        retries=draw(st.integers(0, 3)),
    )


@st.composite
def cases(draw: st.DrawFn) -> Case:
    """A random runnable case: 1-5 clusters of 1-6 hosts with 0-3 VMs each (on or off), any
    DRS level, 0-3 edge clusters of 1-4 edges, 1 or 3 controllers, and a random playbook;
    half the time with named host groups that cut across clusters.

    With maintenance mode a one-host cluster never runs powered-on VMs: the plan
    refuses that (tested in test_plan_properties), so the engine never sees it.
    """
    playbook = draw(playbooks())
    maintenance = playbook.hosts.upgrade_mode is UpgradeMode.MAINTENANCE
    clusters = []
    for _ in range(draw(st.integers(1, 5))):
        drs = draw(st.sampled_from(Drs))
        size = draw(st.integers(1, 6))
        host_vms = [draw(st.lists(st.booleans(), max_size=3)) for _ in range(size)]
        if maintenance and size == 1:
            host_vms = [[False] * len(host_vms[0])]
        clusters.append((drs, host_vms))
    inventory = make_inventory(
        clusters,
        draw(st.lists(st.integers(1, 4), max_size=3)),
        draw(st.sampled_from([1, 3])),
    )
    if draw(st.booleans()):  # named host groups, across clusters, maybe not naming every host
        order = draw(st.permutations([h.id for h in inventory.hosts]))
        named = order[:draw(st.integers(1, len(order)))]
        cuts = sorted(draw(st.sets(st.integers(1, max(1, len(named) - 1)), max_size=3)))
        bounds = [0, *(c for c in cuts if c < len(named)), len(named)]
        groups = tuple(HostGroupSpec(f"group-{i}", tuple(named[a:b]))
                       for i, (a, b) in enumerate(pairwise(bounds)))
        playbook = replace(playbook, hosts=replace(playbook.hosts, groups=groups))
    case = Case(inventory, playbook)
    assert case.plan.runnable, case.plan.refusals
    return case


def fault_targets(inventory: Inventory) -> list[tuple[str, Op]]:
    """Every (unit, op) pair a fault can apply to."""
    pairs = [(SYSTEM, Op.PRECHECK), (BUNDLE, Op.UPLOAD), (COORDINATOR, Op.COORDINATOR)]
    pairs += [(h.id, op) for h in inventory.hosts for op in HOST_OPS]
    pairs += [(e, Op.UPGRADE) for ec in inventory.edge_clusters for e in ec.edges]
    pairs += [(c, Op.UPGRADE) for c in inventory.controllers]
    pairs += [(inventory.manager, Op.UPGRADE), (SYSTEM, Op.POSTCHECK)]
    return pairs


@st.composite
def fault_sets(draw: st.DrawFn, inventory: Inventory) -> tuple[Fault, ...]:
    """1-4 faults of any kind on distinct (unit, op) pairs that apply, 1 or 2 attempts each."""
    pairs = draw(st.lists(st.sampled_from(fault_targets(inventory)), min_size=1, max_size=4,
                          unique=True))
    return tuple(
        Fault(unit, op, draw(st.sampled_from(FaultKind)), draw(st.integers(1, 2)))
        for unit, op in pairs
    )


def expected_upgrade_counts(inventory: Inventory) -> dict[str, int]:
    """How often each unit is upgraded once a run with these faults is done: once, plus one
    for every attempt that a ``fail`` or ``hang`` fault spoils (the retry starts anew)."""
    counts = dict.fromkeys(inventory.units(), 1)
    for f in inventory.faults:
        if f.op is Op.UPGRADE and f.kind in (FaultKind.FAIL, FaultKind.HANG) and f.unit in counts:
            counts[f.unit] += f.times
    return counts


# -- driving --------------------------------------------------------------------------------------


class ShuffledDispatcher(Dispatcher[T]):
    """Runs what is due at the same moment in a random order, as concurrent operations
    of an asynchronous runner may answer in any order."""

    def __init__(self, rnd: random.Random) -> None:
        super().__init__()
        self.rnd = rnd

    def next(self, now: float) -> tuple[float, T] | None:
        """A random entry among those due first."""
        if not self.ready and self.timers:
            now = max(now, self.timers[0][0])
        while self.timers and self.timers[0][0] <= now:
            self.ready.append(heapq.heappop(self.timers)[2])
        if not self.ready:
            return None
        index = self.rnd.randrange(len(self.ready))
        entry = self.ready[index]
        del self.ready[index]
        return now, entry

    def batch(self, now: float) -> tuple[float, list[T]] | None:
        """What is due at the next instant, in a random order."""
        found = super().batch(now)
        if found is not None:
            self.rnd.shuffle(found[1])
        return found



@dataclass
class Run:
    """An engine and its world, driven in legs (a start, then any number of resumes)."""

    plan: Plan
    inventory: Inventory
    engine: Engine
    world: World
    traces: list[Trace] = field(default_factory=list)
    #: the order in which due operations run (default: drive's first-in first-out)
    order: random.Random | None = None

    @classmethod
    def of(cls, plan: Plan, inventory: Inventory, playbook: Playbook) -> Run:
        """A fresh engine (the playbook's policy) against a fresh world."""
        engine = Engine(plan, inventory, Policy.from_playbook(playbook))
        return cls(plan, inventory, engine, World(inventory, plan.target_version))

    @property
    def now(self) -> float:
        """Where the virtual clock stands."""
        return self.traces[-1].end if self.traces else 0.0

    @property
    def state(self) -> RunState:
        """The engine's run state."""
        return self.engine.state

    def start(self, on_event: Callable[[Event], list[Event]] | None = None) -> Trace:
        """Drive from ``Begin`` until the engine settles."""
        return self._leg(None, on_event)

    def resume(self, *, retry_failed: bool = False, skip: tuple[str, ...] = (),
               on_event: Callable[[Event], list[Event]] | None = None) -> Trace:
        """Feed ``Resumed`` and drive until the engine settles again."""
        return self._leg(Resumed(self.now, retry_failed, skip), on_event)

    def _leg(self, first: Event | None, on_event: Callable[[Event], list[Event]] | None) -> Trace:
        dispatcher = ShuffledDispatcher[Action](self.order) if self.order else None
        trace = drive(self.engine, self.world, self.now, on_event, MAX_STEPS, first, dispatcher)
        self.traces.append(trace)
        assert self.engine.settled, f"not settled after {MAX_STEPS} steps: looping?"
        return trace

    def through_group_pauses(self) -> None:
        """Resume at once every pause that ``pause_after_each_group`` makes (fault-free runs);
        each one leaves host groups to do (no pause once every group is done)."""
        for _ in range(len(self.plan.phase(Phase.HOSTS).groups) + 1):
            if self.state is not RunState.PAUSED:
                return
            assert self.engine.phase is Phase.HOSTS, self.engine.stop_reasons
            groups = self.engine.groups[Phase.HOSTS]
            assert not all(g.complete() for g in groups), "paused with every host group done"
            self.resume()

    def retry_until_done(self, rounds: int = 30) -> int:
        """``Resumed(retry_failed=True)`` until done; the number of resumes it took."""
        for n in range(rounds):
            if self.state is RunState.DONE:
                return n
            self.resume(retry_failed=True)
        raise AssertionError(f"not done after {rounds} resumes: {self.engine.stop_reasons}")

    @property
    def events(self) -> list[Event]:
        """Every event of every leg."""
        return [e for t in self.traces for e in t.events]

    @property
    def actions(self) -> list[Action]:
        """Every action of every leg."""
        return [a for t in self.traces for a in t.actions]

    def encoded(self) -> list[dict[str, Any]]:
        """Events and actions of every leg, as the journal would store them."""
        out = []
        for t in self.traces:
            out += [encode(e) for e in t.events] + [encode(a) for a in t.actions]
        return out

    def notices(self, kind: str) -> list[Notice]:
        """The engine's notices of ``kind``."""
        return [a for a in self.actions if isinstance(a, Notice) and a.kind == kind]

    def in_flight(self) -> list[str]:
        """Items part-way through their pipeline."""
        return [i.id for i in self.engine.items.values() if i.active]

    def failed(self) -> list[str]:
        """Items that failed."""
        return [i.id for i in self.engine.items.values() if i.state is UnitState.FAILED]


def fault_free(case: Case) -> Run:
    """``case`` driven to its end, resuming at once after each group pause the playbook asks
    for (never more pauses than host groups but the last)."""
    run = case.run()
    run.start()
    run.through_group_pauses()
    pauses = len(run.traces) - 1
    groups = len(run.plan.phase(Phase.HOSTS).groups)
    assert pauses <= (groups - 1 if case.playbook.hosts.pause_after_each_group else 0), \
        "paused more often than after each host group but the last"
    return run


def restoring(case: Case) -> Case:
    """``case`` with ``hosts.restore_vm_placement: true``."""
    hosts = replace(case.playbook.hosts, restore_vm_placement=True)
    return replace(case, playbook=replace(case.playbook, hosts=hosts))


def away_from_home(inventory: Inventory, snapshot: dict[str, Any]) -> list[str]:
    """Powered-on VMs of clusters whose DRS is not fully automated that are not on the host
    they ran on when the run began."""
    where = {v["id"]: v["host"] for v in snapshot["vms"]}
    return [f"{vm.id} on {where[vm.id]}, home {h.id}" for c in inventory.clusters
            if c.drs is not Drs.FULLY_AUTOMATED for h in map(inventory.host, c.hosts)
            for vm in h.running_vms if where[vm.id] != h.id]
