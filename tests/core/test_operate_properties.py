"""Properties of the pure engine's operating rules (hypothesis): the failure budget and the
canary (DESIGN section 7), on random inventories and playbooks against the simulated world.

Every engine step is watched through a thin wrapper of ``Engine.handle``: what had failed
before the step, and which hosts the step started for the first time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from hypothesis import given
from hypothesis import strategies as st

from tests.invariants import check_invariants
from tests.sim_helpers import (
    SETTINGS,
    Case,
    Run,
    away_from_home,
    cases,
    expected_upgrade_counts,
    fault_free,
    fault_sets,
    make_inventory,
    make_playbook,
    restoring,
)
from upgrade.core.engine.budget import failed_hosts
from upgrade.core.engine.machines import RunState
from upgrade.core.engine.messages import (
    Action,
    Event,
    Notice,
    PauseRequested,
    Resumed,
    Start,
    Started,
    StartFailed,
)
from upgrade.core.model import Canary, Drs, Fault, FaultKind, Op
from upgrade.core.plan import Phase
from upgrade.sim.estimate import estimate


@dataclass
class Watch:
    """What each engine step did: hosts started for the first time, with the state before."""

    hosts: set[str]
    #: (failed hosts before the step, host started, canary hosts done before the step)
    launches: list[tuple[int, str, frozenset[str]]] = field(default_factory=list)
    started: set[str] = field(default_factory=set)
    done: set[str] = field(default_factory=set)
    #: failed hosts after each step (None for a Resumed step: the operator decided)
    failed_after: list[int | None] = field(default_factory=list)


def watch(run: Run) -> Watch:
    """Wrap ``run.engine.handle`` so that every step is recorded."""
    engine = run.engine
    seen = Watch({h.id for h in run.inventory.hosts})
    handle: Callable[[Event], list[Action]] = engine.handle

    def wrapped(event: Event) -> list[Action]:
        before = len(failed_hosts(engine.items.values()))
        done = frozenset(seen.done)
        out = handle(event)
        for action in out:
            if isinstance(action, Start) and action.unit in seen.hosts \
                    and action.unit not in seen.started:
                seen.started.add(action.unit)
                seen.launches.append((before, action.unit, done))
            if isinstance(action, Notice) and action.kind == "unit_done":
                seen.done.add(action.unit)
        seen.failed_after.append(None if isinstance(event, Resumed)
                                 else len(failed_hosts(engine.items.values())))
        return out

    engine.handle = wrapped  # type: ignore[method-assign]
    return seen


@st.composite
def budget_cases(draw: st.DrawFn) -> tuple[Case, int]:
    """A random case with a failure budget and 1-4 hosts whose upgrade always fails."""
    case = draw(cases())
    percent = draw(st.integers(1, 100))
    hosts = [h.id for h in case.inventory.hosts]
    broken = draw(st.lists(st.sampled_from(hosts), min_size=1, max_size=min(4, len(hosts)),
                           unique=True))
    faults = [Fault(h, Op.UPGRADE, FaultKind.FAIL, 99) for h in broken]
    case = replace(case.with_faults(faults),
                   playbook=replace(case.playbook, max_fail_hosts_percent=percent))
    return case, percent


@SETTINGS
@given(budget_cases())
def test_failures_never_exceed_the_budget_without_stopping(args: tuple[Case, int]) -> None:
    """No host starts while more hosts have failed than the budget allows; the run never
    ends done with a failed host; every stop keeps the safety invariants; and while the
    failures stay within the budget they stop nothing: the run stops only when nothing but
    failed hosts (or hosts waiting behind them) is left, naming them."""
    case, percent = args
    run = case.run()
    seen = watch(run)
    run.start()
    allowed = run.engine.budget.allowed
    for before, host, _ in seen.launches:
        assert before <= allowed, f"{host} started with {before} failed hosts, budget {allowed}"
    assert run.state is not RunState.DONE
    check_invariants(run.plan, case.inventory, run.world.snapshot())
    failed = failed_hosts(run.engine.items.values())
    over = [n for n in seen.failed_after if n is not None and n > allowed]
    if not over and failed and not case.playbook.hosts.pause_after_each_group:
        # within the budget the failures stopped nothing: the run stopped once nothing but
        # failed hosts (or hosts waiting behind them) was left, naming them
        assert run.engine.stop_reasons[-1].startswith("failed units wait for an operator")
        assert all(h in run.engine.stop_reasons[-1] for h in failed)
    assert percent * run.engine.budget.total // 100 == allowed


@SETTINGS
@given(cases(), st.integers(1, 4), st.one_of(st.none(), st.integers(1, 3600)))
def test_no_host_beyond_the_canary_starts_before_it_is_done(
        case: Case, hosts: int, watch_s: int | None) -> None:
    """With a canary, the hosts beyond the first N of the plan start only once every canary
    host is done; then the run pauses (``then: pause``, when hosts are left) or waits the
    watch time, and after a resume finishes done with every invariant.  The estimate is
    still the simulated makespan (the watch included, the pause counted as resumed at
    once)."""
    case = replace(case, playbook=replace(case.playbook, canary=Canary(hosts, watch_s)))
    run = case.run()
    seen = watch(run)
    canary = set(run.plan.canary_hosts)
    assert list(run.plan.canary_hosts) == [u for g in run.plan.phase(Phase.HOSTS).groups
                                           for u in g.units][:hosts]
    run.start()
    for _ in run.plan.phase(Phase.HOSTS).groups:  # group pauses may come before its end
        if run.state is not RunState.PAUSED or seen.done >= canary:
            break
        run.resume()
    others_left = len(run.plan.canary_hosts) < sum(
        len(g.units) for g in run.plan.phase(Phase.HOSTS).groups)
    if watch_s is None and others_left:
        assert run.state is RunState.PAUSED
        assert any(r.startswith("canary done: resume to continue")
                   for r in run.engine.stop_reasons)
        assert seen.done >= canary
        assert not seen.started - canary
    run.through_group_pauses()
    assert run.state is RunState.DONE, run.engine.stop_reasons
    for _, host, done in seen.launches:
        assert host in canary or done >= canary, f"{host} started before the canary was done"
    assert len(run.notices("canary_done")) == (1 if canary else 0)
    check_invariants(run.plan, case.inventory, run.world.snapshot(), complete=True)
    if watch_s is not None:
        estimated = estimate(run.plan, case.inventory, case.playbook)
        assert estimated.estimated_duration_s == run.now


@SETTINGS
@given(cases())
def test_every_vm_is_back_home_at_the_end_when_restore_is_on(case: Case) -> None:
    """With ``restore_vm_placement``, a fault-free run ends done with every powered-on VM of
    a cluster whose DRS is not fully automated on its original host, every invariant held
    (no VM on a host while it upgrades), no move back ever refused (its destination was
    never in or entering maintenance), and the estimate still the simulated makespan."""
    case = restoring(case)
    run = fault_free(case)
    assert run.state is RunState.DONE, run.engine.stop_reasons
    snap = run.world.snapshot()
    check_invariants(run.plan, case.inventory, snap, complete=True)
    assert not away_from_home(case.inventory, snap)
    refused = [e for e in run.events if isinstance(e, StartFailed) and e.op is Op.RESTORE]
    assert not refused, refused
    assert estimate(run.plan, case.inventory, case.playbook).estimated_duration_s == run.now


@SETTINGS
@given(cases(), st.data())
def test_vms_come_home_after_faults_and_retries(case: Case, data: st.DataObject) -> None:
    """With random faults, retried until done, every VM is still back home at the end, and
    every unit upgraded as often as its faults say."""
    case = restoring(case)
    case = case.with_faults(data.draw(fault_sets(case.inventory)))
    run = case.run()
    run.start()
    run.retry_until_done()
    snap = run.world.snapshot()
    check_invariants(run.plan, case.inventory, snap, complete=True,
                     upgrade_counts=expected_upgrade_counts(case.inventory))
    assert not away_from_home(case.inventory, snap)


def test_a_pause_during_the_watch_then_resume_waits_out_the_rest() -> None:
    """A pause asked while the canary is watched settles the run paused; `resume` sets the
    watch's timer again, and no other host starts before the watch has ended."""
    inventory = make_inventory(((Drs.MANUAL, ((True,), (True,), ())),))
    playbook = replace(make_playbook(), canary=Canary(1, 3600))
    case = Case(inventory, playbook)
    run = case.run()
    seen = watch(run)
    asked: list[float] = []

    def pause_once(event: Event) -> list[Event]:
        if run.engine.canary.watching and not asked:
            asked.append(event.at)
            return [PauseRequested(event.at, "operator")]
        return []

    run.start(on_event=pause_once)
    assert run.state is RunState.PAUSED and run.engine.canary.watching
    end = run.engine.canary.watch_end
    assert end is not None
    run.resume()
    assert run.state is RunState.DONE, run.engine.stop_reasons
    starts = {host: at for at, host in _first_starts(run)}
    assert all(starts[h] >= end for h in seen.started if h != "esx-0-0")


def _first_starts(run: Run) -> list[tuple[float, str]]:
    """(clock time, host) of each host's first operation, from the legs' events."""
    first: dict[str, float] = {}
    for event in run.events:
        unit = getattr(event, "unit", "")
        if isinstance(event, Started) and unit.startswith("esx-") and unit not in first:
            first[unit] = event.at
    return [(at, host) for host, at in first.items()]
