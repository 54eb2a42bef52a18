"""Test helpers for the pure core: build inputs as objects, drive them, check the invariants.

* :func:`make_inventory` / :func:`make_playbook` build model objects directly;
  :func:`cases` and :func:`fault_sets` are hypothesis strategies over them.
* :class:`Run` is the "fake peer" wiring (h11's ``tests/helpers``): the pure
  engine against an in-memory :class:`~upgrade.sim.world.World` on a virtual
  clock, with every trace kept so invariants can look at the whole history
  across pauses and resumes.
* :func:`check_invariants` checks DESIGN section 5 on a world snapshot (and,
  with ``complete=True``, that the run finished with every unit upgraded).
"""

from __future__ import annotations

import heapq
import math
import random
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from itertools import pairwise
from typing import Any, TypeVar

from hypothesis import strategies as st

from upgrade.core.engine.core import Engine
from upgrade.core.engine.machines import RunState, UnitState
from upgrade.core.engine.messages import (
    Action,
    Begin,
    Event,
    Notice,
    Resumed,
    Start,
    Started,
    TimerFired,
    Wake,
    encode,
)
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
from upgrade.sim import ops
from upgrade.sim.drive import Dispatcher, Trace, drive, due
from upgrade.sim.world import World

T = TypeVar("T")
SOURCE = Version.parse("2.1.0.0")
TARGET = Version.parse("2.3.0.0")
HOST_OPS = (Op.ENTER_MAINTENANCE, Op.EVACUATE, Op.UPGRADE, Op.EXIT_MAINTENANCE)
#: safety net: a driven run that needs more steps than this is looping
MAX_STEPS = 200_000
Interval = tuple[float, float]  # half-open [start, end); an open end is +inf


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


# -- crashes -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Crash:
    """Kill the orchestrator after ``after`` more events; ``lost`` queued operations reach the
    world but their outcomes are never recorded; it stays dead ``down`` simulated seconds."""

    after: int
    lost: int = 0
    down: float = 0.0


@dataclass
class CrashRun:
    """A run whose orchestrator is killed and resumed, as ``run``/``resume`` do it.

    A journal of intents and outcomes (each outcome naming the intent it answers)
    survives every crash; the dispatcher's queue and the engine do not.  A resume
    replays the journal into a fresh engine (checking that it issues the journaled
    actions again), feeds ``Resumed``, then reconciles each intent that has no
    outcome: an operation already running or done is followed (``Started``), any
    other intent is executed again (starts are idempotent).  The world, like the
    simulated adapter's, lives on while the orchestrator is dead.
    """

    case: Case
    world: World
    engine: Engine
    journal: list[tuple[str, Any, int | None]] = field(default_factory=list)
    now: float = 0.0
    resumes: int = 0

    @classmethod
    def of(cls, case: Case) -> CrashRun:
        """A fresh run of ``case``."""
        world = World(case.inventory, case.plan.target_version)
        return cls(case, world, cls._engine(case))

    @staticmethod
    def _engine(case: Case) -> Engine:
        return Engine(case.plan, case.inventory, Policy.from_playbook(case.playbook))

    def _feed(self, event: Event, answers: int | None, queue: Dispatcher[int]) -> None:
        self.journal.append(("event", event, answers))
        for action in self.engine.handle(event):
            self.journal.append(("action", action, None))
            if not isinstance(action, Notice):
                queue.add(due(action, event.at), len(self.journal) - 1, event.at)

    def _loop(self, queue: Dispatcher[int], crash: Crash | None) -> bool:
        """Execute queued intents until the engine settles (True) or the crash (False)."""
        events = 0
        while not self.engine.settled:
            if crash is not None and events >= crash.after:
                for _ in range(min(crash.lost, len(queue))):
                    nxt = queue.next(self.now)
                    assert nxt is not None
                    self.now, seq = nxt
                    action = self.journal[seq][1]
                    if not isinstance(action, Wake):
                        ops.execute(self.world, action, self.now)  # outcome lost
                return False
            nxt = queue.next(self.now)
            assert nxt is not None, "the engine waits for nothing but is not settled"
            self.now, seq = nxt
            action = self.journal[seq][1]
            event = TimerFired(self.now, action.token) if isinstance(action, Wake) \
                else ops.execute(self.world, action, self.now)
            self._feed(event, seq, queue)
            events += 1
            assert events < MAX_STEPS, "looping"
        return True

    def run(self, crashes: Sequence[Crash]) -> None:
        """Begin, crash as told (resuming after each), then go on until the run ends; the
        pauses ``pause_after_each_group`` asks for are resumed at once."""
        queue: Dispatcher[int] = Dispatcher()
        self._feed(Begin(0.0), None, queue)
        pending = list(crashes)
        for _ in range(len(pending) + len(self.case.plan.phase(Phase.HOSTS).groups) + 1):
            crash = pending[0] if pending else None
            if not self._loop(queue, crash):
                assert crash is not None
                pending.pop(0)
                queue = self._resume(crash.down)
            elif self.engine.state is RunState.PAUSED:
                queue = self._resume(0.0)
            else:
                return
        raise AssertionError(f"still {self.engine.state} after every crash and resume")

    def _resume(self, down: float) -> Dispatcher[int]:
        self.resumes += 1
        self.now += down
        self.engine = self._engine(self.case)
        issued: list[Action] = []
        answered = {seq for kind, _, seq in self.journal if kind == "event" and seq is not None}
        outstanding = []
        for seq, (kind, message, _) in enumerate(self.journal):
            if kind == "event":
                issued += self.engine.handle(message)
            else:
                assert issued and encode(issued.pop(0)) == encode(message), "replay differs"
                if not isinstance(message, Notice) and seq not in answered:
                    outstanding.append(seq)
        assert not issued, "replay issued actions the journal does not hold"
        queue: Dispatcher[int] = Dispatcher()
        self._feed(Resumed(self.now), None, queue)
        for seq in outstanding:
            action = self.journal[seq][1]
            if isinstance(action, Start):
                state, _ = self.world.status(action.op, action.unit, self.now)
                if state in ("running", "done"):
                    self._feed(Started(self.now, action.op, action.unit, self.now), seq, queue)
                    continue
            queue.add(due(action, self.now), seq, self.now)
        return queue


# -- invariants -----------------------------------------------------------------------------------


def _iv(pairs: Iterable[dict[str, Any]]) -> list[Interval]:
    return [(p["start"], math.inf if p["end"] is None else p["end"]) for p in pairs]


def _overlap(a: Interval, b: Interval) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def max_concurrent(intervals: Iterable[Interval]) -> int:
    """How many half-open intervals overlap at the busiest moment."""
    points = sorted((t, d) for s, e in intervals if e > s for t, d in ((s, 1), (e, -1)))
    best = now = 0
    for _, delta in points:  # at equal times ends (-1) sort before starts (+1)
        now += delta
        best = max(best, now)
    return best


def _merge(intervals: Iterable[Interval]) -> list[Interval]:
    out: list[Interval] = []
    for s, e in sorted(intervals):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def vm_residence(inventory: Inventory, snapshot: dict[str, Any]) -> dict[str, list[tuple[str,
                                                                                        Interval]]]:
    """For each powered-on VM, the hosts it ran on with when, from the world's VM moves."""
    initial = {vm.id: h.id for h in inventory.hosts for vm in h.vms}
    out: dict[str, list[tuple[str, Interval]]] = {}
    for vm in snapshot["vms"]:
        if not vm["powered_on"]:
            continue
        where, since, stays = initial[vm["id"]], 0.0, []
        for move in vm["moves"]:
            assert move["from"] == where, f"{vm['id']} moved from {move['from']}, was on {where}"
            stays.append((where, (since, move["at"])))
            where, since = move["to"], move["at"]
        stays.append((where, (since, math.inf)))
        assert where == vm["host"], f"{vm['id']}: moves end on {where}, world says {vm['host']}"
        out[vm["id"]] = stays
    return out


def check_invariants(plan: Plan, inventory: Inventory, snapshot: dict[str, Any], *,
                     complete: bool = False,
                     upgrade_counts: dict[str, int] | None = None) -> None:
    """DESIGN section 5 on a world snapshot; raises AssertionError naming what broke.

    Always (at a stop too): hosts busy (in maintenance or upgrading) at once never
    above a group's ``max_parallel``, groups busy at once never above
    ``max_parallel_groups``, never every host of a cluster with running VMs in
    maintenance; no powered-on VM on a host while it upgrades (maintenance mode);
    never two edges of one edge cluster upgrading at once; components strictly
    in order; in maintenance mode every host upgrade inside one of its maintenance
    intervals.  With ``complete``: every unit at the target version, upgraded as
    often as ``upgrade_counts`` says (default once), nothing left in maintenance.
    """
    units = {u["id"]: u for u in snapshot["units"]}
    assert set(units) == set(inventory.units()), "the world's units are the inventory's"
    upgrades = {u: _iv(x["upgrades"]) for u, x in units.items()}
    maintenance = {u: _iv(x["maintenance"]) for u, x in units.items()}
    maintenance_mode = plan.upgrade_mode is UpgradeMode.MAINTENANCE
    busy = {h.id: _merge(upgrades[h.id] + maintenance[h.id]) for h in inventory.hosts}

    # hosts: per group, groups at once, clusters never emptied of running VMs' homes
    hosts_plan = plan.phase(Phase.HOSTS)
    group_spans: list[Interval] = []
    for group in hosts_plan.groups:
        spans = [iv for h in group.units for iv in busy[h]]
        n = max_concurrent(spans)
        assert n <= group.max_parallel, \
            f"group {group.name}: {n} hosts busy at once, plan allows {group.max_parallel}"
        group_spans += _merge(spans)
    n = max_concurrent(group_spans)
    assert n <= hosts_plan.max_parallel_groups, \
        f"{n} host groups busy at once, plan allows {hosts_plan.max_parallel_groups}"
    for cluster in inventory.clusters:
        if any(inventory.host(h).running_vms for h in cluster.hosts):
            n = max_concurrent(iv for h in cluster.hosts for iv in maintenance[h])
            assert n < len(cluster.hosts), \
                f"cluster {cluster.name}: all {n} hosts in maintenance with VMs running"

    # no powered-on VM on a host while it upgrades; upgrades inside maintenance
    if maintenance_mode:
        for vm, stays in vm_residence(inventory, snapshot).items():
            for host, stay in stays:
                for up in upgrades.get(host, ()):
                    assert not _overlap(stay, up), \
                        f"VM {vm} powered on on {host} during {host}'s upgrade {up}"
        for h in inventory.hosts:
            for up in upgrades[h.id]:
                assert any(m[0] <= up[0] and up[1] <= m[1] for m in maintenance[h.id]), \
                    f"{h.id} upgraded {up} outside maintenance {maintenance[h.id]}"

    # edges of one edge cluster one at a time
    for ec in inventory.edge_clusters:
        n = max_concurrent(iv for e in ec.edges for iv in upgrades[e])
        assert n <= 1, f"edge cluster {ec.name}: {n} edges upgrading at once"

    # components strictly in order
    kinds: dict[str, list[Interval]] = defaultdict(list)
    for h in inventory.hosts:
        kinds["host"] += busy[h.id]
    for u, x in units.items():
        if x["kind"] != "host":
            kinds[x["kind"]] += upgrades[u]
    order = ["host", "edge", "controller", "manager"]
    for i, before in enumerate(order):
        for after in order[i + 1:]:
            if kinds[before] and kinds[after]:
                last = max(e for _, e in kinds[before])
                first = min(s for s, _ in kinds[after])
                assert last <= first, f"a {after} started at {first} before every {before} " \
                    f"was done ({last})"

    if complete:
        counts = upgrade_counts or {}
        for u, x in units.items():
            assert x["version"] == snapshot["target_version"], f"{u} is at {x['version']}"
            assert x["upgrade_count"] == counts.get(u, 1), \
                f"{u} upgraded {x['upgrade_count']} times, expected {counts.get(u, 1)}"
        left = [u for u, x in units.items()
                if x["in_maintenance"] or any(e == math.inf for _, e in maintenance[u])]
        assert not left, f"left in maintenance: {left}"
