"""The upgrade plan: a pure function of the playbook, the inventory and the acknowledgements.

It decides the order (the Upgrade Coordinator's, as the hop's :class:`Flow` gives it:
NSX-T 2.1-2.3 hosts, edges, controllers, manager; 2.4 no controller phase; 2.5 the edges
first), the groups and their concurrency, the pre-check findings, and whether evacuation
is possible at all.  A flow is plain data read from the sourced flow data
(:mod:`upgrade.compat.flows`); the engine's phase machine is built from the plan's phases,
so no release is ever run in another release's order.  It does no I/O and reads no clock;
the estimated durations come from :mod:`upgrade.sim.estimate`, which runs the real
engine against a fault-free simulated world, so the estimate is the makespan
the engine will achieve on the simulated adapter.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from itertools import chain, filterfalse, islice
from operator import attrgetter

from upgrade.core.capacity import maintenance_capacity
from upgrade.core.model import (
    BUNDLE,
    COORDINATOR,
    SYSTEM,
    Finding,
    HostGroupSpec,
    Inventory,
    Mode,
    Op,
    Playbook,
    Severity,
    UnitKind,
    UpgradeMode,
)
from upgrade.core.versions import Version
from upgrade.core.window import WindowSpec


class Phase(StrEnum):
    """The phases of an upgrade, in the only order they may run."""

    PRECHECK = "precheck"  #: health checks; findings block or need acknowledging
    BUNDLE = "bundle"  #: upload, extract and verify the .mub
    COORDINATOR = "coordinator"  #: upgrade the Upgrade Coordinator itself
    HOSTS = "hosts"  #: host transport nodes, by group
    EDGES = "edges"  #: edges, one at a time within each edge cluster
    CONTROLLERS = "controllers"  #: the controller cluster, all nodes together
    MANAGER = "manager"  #: the NSX Manager, last
    POSTCHECK = "postcheck"  #: every unit at the target version, nothing in maintenance


PHASES: tuple[Phase, ...] = tuple(Phase)
#: the unit phases of NSX-T 2.1-2.3, in their order: a plan made without a flow has these
CLASSIC_ORDER: tuple[Phase, ...] = (Phase.HOSTS, Phase.EDGES, Phase.CONTROLLERS, Phase.MANAGER)


@dataclass(frozen=True, slots=True)
class SystemStep:
    """A phase that is one operation on the whole system rather than on units."""

    phase: Phase
    op: Op
    #: the pseudo-unit the adapter knows the operation by
    target: str

    @property
    def item(self) -> str:
        """Its work item's id (and its unit in reports): the phase's name."""
        return self.phase.value


#: the system steps, by phase: the one list of them
SYSTEM_STEPS: Mapping[Phase, SystemStep] = {
    Phase.PRECHECK: SystemStep(Phase.PRECHECK, Op.PRECHECK, SYSTEM),
    Phase.BUNDLE: SystemStep(Phase.BUNDLE, Op.UPLOAD, BUNDLE),
    Phase.COORDINATOR: SystemStep(Phase.COORDINATOR, Op.COORDINATOR, COORDINATOR),
    Phase.POSTCHECK: SystemStep(Phase.POSTCHECK, Op.POSTCHECK, SYSTEM),
}
#: the system steps, by operation (each operation belongs to one step)
SYSTEM_BY_OP: Mapping[Op, SystemStep] = {s.op: s for s in SYSTEM_STEPS.values()}
#: the work item ids of the system steps
SYSTEM_ITEMS: frozenset[str] = frozenset(s.item for s in SYSTEM_STEPS.values())
UNIT_PHASES: Mapping[Phase, UnitKind] = {
    Phase.HOSTS: UnitKind.HOST,
    Phase.EDGES: UnitKind.EDGE,
    Phase.CONTROLLERS: UnitKind.CONTROLLER,
    Phase.MANAGER: UnitKind.MANAGER,
}


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
        """``2.3-to-2.4 (NSX-T 2.3.1 -> 2.4.x: hosts, edges, manager)``."""
        return f"{self.id} ({self.title}: {', '.join(p.value for p in self.order)})"


@dataclass(frozen=True, slots=True)
class GroupPlan:
    """Units upgraded together: at most ``max_parallel`` at once, in ``units`` order."""

    name: str
    units: tuple[str, ...]
    max_parallel: int
    #: why max_parallel is lower than asked, when it is
    note: str | None = None
    #: members already at the target version: reported, never touched
    current: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PhasePlan:
    """One phase: its groups, how many run at once, and its estimated duration."""

    name: Phase
    groups: tuple[GroupPlan, ...] = ()
    max_parallel_groups: int = 1
    estimated_duration_s: int = 0
    #: offset of the phase's start from the upgrade's start, seconds
    estimated_start_s: int = 0
    #: nothing to do: a system step (precheck, bundle, ...) that is not run at all
    skipped: bool = False


#: not ``frozen`` (equal and hashed as if it were, never changed once made): a frozen
#: dataclass sets each field through ``object.__setattr__``, and a 100,000-host schedule
#: has 300,000 bars
@dataclass(slots=True, unsafe_hash=True)
class Bar:
    """One operation of the estimated schedule (for charts)."""

    phase: Phase
    unit: str
    op: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Plan:
    """The ordered plan; ``refusals`` non-empty means it must not run."""

    name: str
    source_version: Version
    target_version: Version
    phases: tuple[PhasePlan, ...]
    findings: tuple[Finding, ...]
    compatibility: Mapping[str, object] = field(default_factory=dict)
    compatible: bool = True
    upgrade_mode: UpgradeMode = UpgradeMode.MAINTENANCE
    pause_after_each_group: bool = False
    notes: tuple[str, ...] = ()
    schedule: tuple[Bar, ...] = ()
    estimated_duration_s: int = 0
    #: the calendar the estimate started at (epoch seconds; ``plan --start-at``), if any
    start_at: float | None = None
    #: the maintenance windows the estimate used ("finishes Sun 03:40, in 3 windows")
    windows: int = 0
    #: the playbook's maintenance window (None: units start at any time)
    window: WindowSpec | None = None
    #: the canary: these hosts first, alone, then a pause (watch None) or a watch of S seconds
    canary_hosts: tuple[str, ...] = ()
    canary_watch_s: int | None = None
    #: the hosts phase's failure budget, percent of its hosts
    max_fail_hosts_percent: int = 0
    restore_vm_placement: bool = False
    #: the Upgrade Coordinator's order this plan follows (None: the 2.1-2.3 order, or none
    #: at all when ``no_flow`` says why the flow data holds none for this hop)
    flow: Flow | None = None
    #: why no flow applies (the plan then has no phases and must not run)
    no_flow: str = ""

    @property
    def already_at_target(self) -> tuple[str, ...]:
        """Units already at the target version, in plan order: left as they are."""
        return tuple(u for p in self.phases for g in p.groups for u in g.current)

    @property
    def nothing_to_do(self) -> bool:
        """True when every unit is already at the target: the run changes nothing."""
        return self.unit_count() == 0 and not self.no_flow

    @property
    def refusals(self) -> tuple[str, ...]:
        """Human reasons the plan must not run (exit 4); none when there is nothing to do."""
        if self.no_flow:
            return (f"flow: {self.no_flow}",)
        if self.nothing_to_do:
            return ()
        out = [f"{f.id}: {f.message}" + _fix(f) for f in self.findings if f.blocking]
        if not self.compatible:
            reason = str(self.compatibility.get("reason", "unsupported"))
            reason = reason.removeprefix("Refused: ").removeprefix("refused: ")
            out.append(f"compatibility: {reason}")
        return tuple(out)

    @property
    def runnable(self) -> bool:
        """True when nothing blocks the upgrade."""
        return not self.refusals

    def phase(self, name: Phase) -> PhasePlan:
        """The plan of phase ``name``."""
        return next(p for p in self.phases if p.name is name)

    def unit_count(self) -> int:
        """How many units the plan upgrades."""
        return sum(len(g.units) for p in self.phases for g in p.groups)


def _fix(finding: Finding) -> str:
    if finding.severity is Severity.WARNING and not finding.acknowledged:
        return (
            f" (acknowledge it with --ack {finding.id} or in the playbook: "
            f"prechecks: {{acknowledge: [{finding.id}]}})"
        )
    return ""


#: the id of the finding about a ``path`` bundle without ``sha256``
BUNDLE_UNVERIFIED = "bundle-unverified"


def unverified_bundle(playbook: Playbook, acknowledged: bool) -> Finding:
    """The warning a ``path`` bundle without ``sha256`` plans with: shown, not blocking
    (the manager still verifies the bundle's signature), acknowledgeable like any other."""
    return Finding(
        BUNDLE_UNVERIFIED, Severity.WARNING,
        f"bundle {playbook.bundle.path} has no sha256 in the playbook, so nsxt-upgrade cannot "
        "tell a wrong or truncated file before uploading it; add bundle.sha256 (what "
        "`sha256sum BUNDLE` prints first)",
        acknowledged=acknowledged, advisory=True,
    )


def build_plan(
    playbook: Playbook,
    inventory: Inventory,
    acknowledged: Iterable[str] = (),
    compatibility: Mapping[str, object] | None = None,
    compatible: bool = True,
    flow: Flow | None = None,
) -> Plan:
    """The plan for ``playbook`` over ``inventory``, without estimates (see ``estimate``).

    Its unit phases are ``flow``'s, in its order (without a flow: hosts, edges,
    controllers, manager, the order of NSX-T 2.1-2.3); units of a kind the flow merges
    into another (2.4's controllers) are not upgraded and the plan says so.
    """
    acks = set(playbook.acknowledge) | set(acknowledged)
    findings = [replace(w, acknowledged=w.id in acks) for w in inventory.warnings]
    findings += list(inventory.errors)
    if playbook.bundle.path and not playbook.bundle.sha256:
        findings.append(unverified_bundle(playbook, BUNDLE_UNVERIFIED in acks))
    notes: list[str] = []
    target = playbook.target_version
    order = flow.order if flow is not None else CLASSIC_ORDER
    upgraded = {UNIT_PHASES[p] for p in order}
    kinds = inventory.units()
    current = _at_target(inventory, kinds, target)
    # every kind upgraded (the usual flows): no pass over 100,000 units to find none
    merged = [u for u, kind in kinds.items() if kind not in upgraded] \
        if upgraded != set(UnitKind) else []
    if merged and flow is not None:
        notes.append(f"{', '.join(merged)}: not upgraded: {flow.merged_note or 'no phase'}")
    findings += _ahead_of_target(inventory, target)
    host_groups = _host_groups(playbook, inventory, findings, notes, current)
    h = playbook.hosts

    def split(name: str, units: tuple[str, ...], parallel: int) -> GroupPlan:
        todo = tuple(u for u in units if u not in current)
        return GroupPlan(name, todo, max(1, min(parallel, len(todo))),
                         current=tuple(u for u in units if u in current))

    edge_groups = tuple(split(ec.name, ec.edges, 1) for ec in inventory.edge_clusters
                        if ec.edges)
    # nothing to upgrade: no system step either
    idle = all(u in current for u, kind in kinds.items() if kind in upgraded)
    unit_phases = {
        Phase.HOSTS: PhasePlan(
            Phase.HOSTS,
            tuple(host_groups),
            1 if h.mode is Mode.SERIAL else max(1, min(h.max_parallel_groups, len(host_groups))),
        ),
        Phase.EDGES: PhasePlan(
            Phase.EDGES,
            edge_groups,
            1 if playbook.edges_mode is Mode.SERIAL else max(1, len(edge_groups)),
        ),
        Phase.CONTROLLERS: PhasePlan(
            Phase.CONTROLLERS,
            (split("controllers", inventory.controllers, len(inventory.controllers)),),
        ),
        Phase.MANAGER: PhasePlan(Phase.MANAGER, (split("manager", (inventory.manager,), 1),)),
    }
    phases = [
        PhasePlan(Phase.PRECHECK, skipped=idle),
        PhasePlan(Phase.BUNDLE, skipped=idle),
        PhasePlan(Phase.COORDINATOR, skipped=idle),
        *(unit_phases[p] for p in order),
        PhasePlan(Phase.POSTCHECK, skipped=idle),
    ]
    return Plan(
        name=playbook.name,
        source_version=inventory.version,
        target_version=playbook.target_version,
        phases=tuple(phases),
        findings=tuple(findings),
        compatibility=dict(compatibility or {}),
        compatible=compatible,
        upgrade_mode=h.upgrade_mode,
        pause_after_each_group=h.pause_after_each_group,
        notes=tuple(notes),
        canary_hosts=tuple(islice(chain.from_iterable(g.units for g in host_groups),
                                  playbook.canary.hosts if playbook.canary else 0)),
        canary_watch_s=playbook.canary.watch_s if playbook.canary else None,
        max_fail_hosts_percent=playbook.max_fail_hosts_percent,
        restore_vm_placement=h.restore_vm_placement,
        flow=flow,
    )


def refused_for_flow(playbook: Playbook, inventory: Inventory, reason: str) -> Plan:
    """The plan of a hop the flow data holds no order for: no phases, refused with
    ``reason`` (never planned in another release's order)."""
    return Plan(name=playbook.name, source_version=inventory.version,
                target_version=playbook.target_version, phases=(), findings=(),
                no_flow=reason)


def _at_target(inventory: Inventory, kinds: Mapping[str, UnitKind], target: Version
               ) -> set[str]:
    """The units already at ``target``: ``{u for u, v in inventory.versions().items() if v
    == target}``, comparing the system's version once rather than once per unit (100,000
    hosts; issue 23 item 4)."""
    own = dict(inventory.unit_versions)
    if inventory.version == target:
        return {u for u in kinds if u not in own or own[u] == target}
    return {u for u, v in own.items() if u in kinds and v == target}


def _ahead_of_target(inventory: Inventory, target: Version) -> list[Finding]:
    """Units that report a version past the target: NSX-T 2.x cannot downgrade them (a
    whole system past it is the compatibility gate's refusal)."""
    return [
        Finding(f"unit-ahead-of-target-{unit}", Severity.ERROR,
                f"{unit} reports {version}, newer than the target {target}; NSX-T cannot "
                "downgrade a unit: check the playbook's target_version and the inventory",
                unit)
        for unit, version in inventory.unit_versions if version > target
    ]


_CLUSTER = attrgetter("cluster")


def _host_groups(
    playbook: Playbook, inventory: Inventory, findings: list[Finding], notes: list[str],
    current: set[str],
) -> list[GroupPlan]:
    h = playbook.hosts
    specs: list[HostGroupSpec] = list(h.groups or ())
    named = {host for g in specs for host in g.hosts}
    # the hosts of each cluster no group names (filterfalse: a C loop over 100,000 hosts)
    unnamed = ((c.name, tuple(filterfalse(named.__contains__, c.hosts)))
               for c in inventory.clusters)
    leftover = [HostGroupSpec(name, rest) for name, rest in unnamed if rest]
    if h.groups is not None and leftover:
        names = ", ".join(g.name for g in leftover)
        notes.append(f"hosts not named in any group are upgraded last, by cluster: {names}")
    specs += leftover

    hosts = inventory.host_map
    clusters = {c.name: c for c in inventory.clusters}
    maintenance = h.upgrade_mode is UpgradeMode.MAINTENANCE
    if maintenance:
        for c in inventory.clusters:
            if len(c.hosts) == 1 and hosts[c.hosts[0]].running_vms and \
                    c.hosts[0] not in current:
                host = hosts[c.hosts[0]]
                vms = ", ".join(vm.id for vm in host.running_vms)
                findings.append(Finding(
                    f"evacuation-impossible-{host.id}",
                    Severity.ERROR,
                    f"host {host.id} is the only host of cluster {c.name} and runs powered-on "
                    f"VMs ({vms}) that maintenance mode cannot move anywhere; add a host to "
                    "the cluster, power the VMs off or move them, or use "
                    "hosts.upgrade_mode: in_place",
                    host.id,
                ))

    #: each group's clusters, in the order of its hosts (C loops: 100,000 hosts)
    spec_clusters = [tuple(dict.fromkeys(map(_CLUSTER, map(hosts.__getitem__, spec.hosts))))
                     for spec in specs]
    #: cluster -> the indexes of the groups with hosts of it
    groups_of: dict[str, set[int]] = {}
    for index, cnames in enumerate(spec_clusters):
        for cname in cnames:
            groups_of.setdefault(cname, set()).add(index)
    groups = []
    for index, spec in enumerate(specs):
        todo = tuple(filterfalse(current.__contains__, spec.hosts))
        asked = 1 if h.mode is Mode.SERIAL else h.max_parallel
        allowed = min(asked, len(todo))
        note = None
        if maintenance:
            for cname in spec_clusters[index]:
                cluster = clusters[cname]
                limit = maintenance_capacity(cluster, hosts)
                # no capacity at all is the evacuation-impossible finding, not a cap
                if limit and allowed > limit:
                    allowed = limit
                    note = (
                        f"max_parallel capped at {limit} (cluster {cname} has "
                        f"{len(cluster.hosts)} hosts and running VMs: one host must stay "
                        "out of maintenance to receive them)"
                    )
        if note:
            notes.append(f"group {spec.name}: {note}")
        shared = [c for c in spec_clusters[index] if groups_of[c] - {index}]
        if maintenance and shared and h.mode is Mode.PARALLEL:
            notes.append(f"group {spec.name} shares cluster(s) {', '.join(shared)} with other "
                         "groups: the run keeps one host of each cluster out of maintenance "
                         "across groups, so these groups may wait for each other")
        groups.append(GroupPlan(spec.name, todo, max(1, allowed), note,
                                tuple(filter(current.__contains__, spec.hosts))))
    return groups
