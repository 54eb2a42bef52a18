"""Properties of `build_plan` over random inventories and playbooks (hypothesis).

Inventories: 1-4 vCenter clusters of 1-6 hosts whose VMs are powered on or
off, any DRS level, 0-4 edge clusters of 1-4 edges, 1 or 3 controllers, some
warnings and errors.  Playbooks: serial or parallel hosts, max_parallel and
max_parallel_groups 1-5, maintenance or in-place, serial or parallel edges,
and sometimes custom host groups that partition some or all of the hosts.
Everything is built as model objects: no files.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from upgrade.core.model import (
    Bundle,
    Cluster,
    Drs,
    EdgeCluster,
    Finding,
    Host,
    HostGroupSpec,
    HostSettings,
    Inventory,
    InventorySpec,
    Mode,
    Playbook,
    Severity,
    UpgradeMode,
    Vm,
)
from upgrade.core.plan import PHASES, UNIT_PHASES, Phase, Plan, build_plan
from upgrade.core.versions import Version

WARNING_IDS = ("edge-connectivity-degraded", "ntp-drift", "disk-space-low")


@dataclass(frozen=True)
class Case:
    """One generated input to `build_plan`."""

    inventory: Inventory
    playbook: Playbook
    cli_acks: tuple[str, ...]

    def plan(self) -> Plan:
        """The plan of this case."""
        return build_plan(self.playbook, self.inventory, self.cli_acks)


@st.composite
def inventories(draw: st.DrawFn) -> Inventory:
    """A random inventory."""
    clusters: list[Cluster] = []
    hosts: list[Host] = []
    for c in range(draw(st.integers(1, 4))):
        ids = []
        for h in range(draw(st.integers(1, 6))):
            powered = draw(st.lists(st.booleans(), max_size=3))
            vms = tuple(Vm(f"vm-{c}-{h}-{i}", on) for i, on in enumerate(powered))
            hosts.append(Host(f"esx-{c}-{h}", f"cluster-{c}", vms))
            ids.append(f"esx-{c}-{h}")
        clusters.append(Cluster(f"cluster-{c}", draw(st.sampled_from(Drs)), tuple(ids)))
    edge_clusters = tuple(
        EdgeCluster(f"edge-cluster-{e}", tuple(f"edge-{e}-{i}" for i in range(size)))
        for e, size in enumerate(draw(st.lists(st.integers(1, 4), max_size=4)))
    )
    controllers = tuple(f"ctrl-{i}" for i in range(draw(st.sampled_from([1, 3]))))
    warnings = tuple(
        Finding(w, Severity.WARNING, f"{w} on the lab", "edge-0-0")
        for w in draw(st.lists(st.sampled_from(WARNING_IDS), unique=True))
    )
    errors = tuple(
        Finding(f"error-{i}", Severity.ERROR, "broken") for i in range(draw(st.integers(0, 1)))
    )
    return Inventory(
        version=Version.parse("2.1.0.0"), manager="nsx-mgr-01", controllers=controllers,
        edge_clusters=edge_clusters, clusters=tuple(clusters), hosts=tuple(hosts),
        warnings=warnings, errors=errors,
    )


@st.composite
def host_groups(draw: st.DrawFn, inventory: Inventory) -> tuple[HostGroupSpec, ...] | None:
    """None (one group per cluster) or groups partitioning some or all of the hosts."""
    if draw(st.booleans()):
        return None
    order = draw(st.permutations([h.id for h in inventory.hosts]))
    named = order[: draw(st.integers(1, len(order)))]
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(named) - 1)))) - {len(named)})
    bounds = [0, *cuts, len(named)]
    return tuple(
        HostGroupSpec(f"group-{i}", tuple(named[a:b]))
        for i, (a, b) in enumerate(pairwise(bounds))
    )


@st.composite
def cases(draw: st.DrawFn) -> Case:
    """A random inventory with a random playbook over it and random `--ack` ids."""
    inventory = draw(inventories())
    warning_ids = [w.id for w in inventory.warnings]
    hosts = HostSettings(
        mode=draw(st.sampled_from(Mode)),
        max_parallel=draw(st.integers(1, 5)),
        max_parallel_groups=draw(st.integers(1, 5)),
        upgrade_mode=draw(st.sampled_from(UpgradeMode)),
        pause_after_each_group=draw(st.booleans()),
        groups=draw(host_groups(inventory)),
    )
    playbook = Playbook(
        name="generated",
        target_version=Version.parse("2.3.0.0"),
        bundle=Bundle(url="https://depot.example/nsx.mub"),
        inventory=InventorySpec("simulated", "inventory.yaml"),
        acknowledge=tuple(draw(st.lists(st.sampled_from(WARNING_IDS), unique=True))),
        hosts=hosts,
        edges_mode=draw(st.sampled_from(Mode)),
    )
    cli_acks = tuple(draw(st.lists(st.sampled_from(warning_ids), unique=True))
                     if warning_ids else [])
    return Case(inventory, playbook, cli_acks)


def units_of(plan: Plan, phase: Phase) -> list[str]:
    """The units of ``phase`` in plan order."""
    return [u for g in plan.phase(phase).groups for u in g.units]


@given(cases())
def test_every_unit_exactly_once_in_its_phase(case: Case) -> None:
    """Every unit appears exactly once, in the phase of its kind; the other phases hold none."""
    plan = case.plan()
    assert [p.name for p in plan.phases] == list(PHASES)
    all_units = [u for p in plan.phases for g in p.groups for u in g.units]
    assert sorted(all_units) == sorted(case.inventory.units())
    kinds = case.inventory.units()
    for phase in plan.phases:
        expected = UNIT_PHASES.get(phase.name)
        if expected is None:
            assert phase.groups == ()
        assert {kinds[u] for g in phase.groups for u in g.units} <= {expected}
    assert units_of(plan, Phase.MANAGER) == [case.inventory.manager]
    assert plan.phase(Phase.CONTROLLERS).groups[0].units == case.inventory.controllers


@given(cases())
def test_concurrency_limits(case: Case) -> None:
    """Every group runs 1 to 5 units at once and never more than it has."""
    plan = case.plan()
    for phase in plan.phases:
        assert 1 <= phase.max_parallel_groups <= max(1, len(phase.groups))
        for group in phase.groups:
            assert 1 <= group.max_parallel <= min(5, len(group.units))
    hosts = plan.phase(Phase.HOSTS)
    assert hosts.max_parallel_groups <= case.playbook.hosts.max_parallel_groups <= 5


@given(cases())
def test_edges_one_at_a_time_per_edge_cluster(case: Case) -> None:
    """Each edge group is exactly one edge cluster's edges, upgraded one at a time."""
    plan = case.plan()
    edges = plan.phase(Phase.EDGES)
    assert [(g.name, g.units) for g in edges.groups] == [
        (ec.name, ec.edges) for ec in case.inventory.edge_clusters
    ]
    assert all(g.max_parallel == 1 for g in edges.groups)
    if case.playbook.edges_mode is Mode.SERIAL:
        assert edges.max_parallel_groups == 1


@given(cases())
def test_serial_hosts_one_at_a_time(case: Case) -> None:
    """Serial mode: one host at a time in every group, one group at a time."""
    plan = case.plan()
    if case.playbook.hosts.mode is Mode.SERIAL:
        hosts = plan.phase(Phase.HOSTS)
        assert hosts.max_parallel_groups == 1
        assert all(g.max_parallel == 1 for g in hosts.groups)


@given(cases())
def test_evacuation_always_possible(case: Case) -> None:
    """In maintenance mode no group can empty a cluster with running VMs.

    For every host group and every cluster with powered-on VMs it touches,
    max_parallel is at most the cluster's size minus one; a one-host cluster
    with running VMs is instead a blocking error naming the host.
    """
    plan = case.plan()
    inv = case.inventory
    clusters = {c.name: c for c in inv.clusters}
    maintenance = case.playbook.hosts.upgrade_mode is UpgradeMode.MAINTENANCE
    for group in plan.phase(Phase.HOSTS).groups:
        for name in {inv.host(h).cluster for h in group.units}:
            cluster = clusters[name]
            running = any(inv.host(h).running_vms for h in cluster.hosts)
            if maintenance and running and len(cluster.hosts) > 1:
                assert group.max_parallel <= len(cluster.hosts) - 1
    stuck = {
        c.hosts[0] for c in inv.clusters
        if maintenance and len(c.hosts) == 1 and inv.host(c.hosts[0]).running_vms
    }
    errors = {f.unit for f in plan.findings if f.severity is Severity.ERROR and f.unit}
    assert errors == stuck
    for host in stuck:
        assert not plan.runnable
        assert any(host in r and "in_place" in r for r in plan.refusals)


@given(cases())
def test_concurrency_is_capped_only_when_needed(case: Case) -> None:
    """Each host group gets the concurrency asked, lowered only by its size and evacuation.

    A cap below what was asked (and what the group could hold) carries a note.
    """
    plan = case.plan()
    inv = case.inventory
    h = case.playbook.hosts
    asked = 1 if h.mode is Mode.SERIAL else h.max_parallel
    for group in plan.phase(Phase.HOSTS).groups:
        limit = min(asked, len(group.units))
        expected = limit
        if h.upgrade_mode is UpgradeMode.MAINTENANCE:
            for name in {inv.host(x).cluster for x in group.units}:
                cluster = next(c for c in inv.clusters if c.name == name)
                if len(cluster.hosts) > 1 and any(inv.host(x).running_vms for x in cluster.hosts):
                    expected = min(expected, len(cluster.hosts) - 1)
        assert group.max_parallel == max(1, expected)
        assert (group.note is not None) == (expected < limit)
        if group.note is not None:
            assert f"group {group.name}: {group.note}" in plan.notes


@given(cases())
def test_host_groups_follow_the_playbook_then_the_inventory(case: Case) -> None:
    """Custom groups come first as written; other hosts follow by cluster in inventory order."""
    plan = case.plan()
    custom = case.playbook.hosts.groups or ()
    named = {x for g in custom for x in g.hosts}
    expected = [(g.name, g.hosts) for g in custom] + [
        (c.name, tuple(x for x in c.hosts if x not in named))
        for c in case.inventory.clusters
        if any(x not in named for x in c.hosts)
    ]
    assert [(g.name, g.units) for g in plan.phase(Phase.HOSTS).groups] == expected


@given(cases())
def test_findings_and_acknowledgements(case: Case) -> None:
    """A warning is acknowledged iff the playbook or `--ack` names it; errors always block."""
    plan = case.plan()
    acks = set(case.playbook.acknowledge) | set(case.cli_acks)
    for finding in plan.findings:
        if finding.severity is Severity.WARNING:
            assert finding.acknowledged == (finding.id in acks)
            assert finding.blocking == (finding.id not in acks)
        else:
            assert finding.blocking
    assert plan.runnable == (not any(f.blocking for f in plan.findings))
    assert {f.id for f in case.inventory.warnings} <= {f.id for f in plan.findings}


@settings(max_examples=50)
@given(cases())
def test_the_plan_is_a_pure_function(case: Case) -> None:
    """The same inputs always give the same plan."""
    assert case.plan() == case.plan()
