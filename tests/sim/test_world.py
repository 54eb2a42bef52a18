"""Unit tests of the simulated world (:mod:`upgrade.sim.world`) and its store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.sim_helpers import TARGET, make_inventory
from upgrade.core.model import SYSTEM, Drs, Fault, FaultKind, Inventory, Op
from upgrade.errors import AdapterError, TransientAdapterError
from upgrade.sim import ops
from upgrade.sim.store import FILENAME, WorldStore
from upgrade.sim.world import TIMEOUT_EXTRA_S, TIMEOUT_FACTOR, World


def _world(inventory: Inventory | None = None) -> World:
    return World(inventory or make_inventory(), TARGET)


def _unit(world: World, ident: str) -> dict[str, Any]:
    return next(u for u in world.snapshot()["units"] if u["id"] == ident)


def test_starting_a_running_upgrade_again_changes_nothing() -> None:
    """Starting an upgrade that runs returns its end and starts no second attempt."""
    world = _world()
    end = world.start(Op.UPGRADE, "edge-0-0", 0.0)
    assert end == 600.0
    before = world.snapshot()
    assert world.start(Op.UPGRADE, "edge-0-0", 100.0) == 600.0
    after = world.snapshot()
    assert after["units"] == before["units"]
    assert after["operations"] == before["operations"]
    assert world.attempts[("edge-0-0", "upgrade")] == 1


def test_an_upgraded_unit_is_not_upgraded_again() -> None:
    """Once a unit reports the target version, a start does nothing and reads done."""
    world = _world()
    world.start(Op.UPGRADE, "ctrl-0", 0.0)
    assert world.status(Op.UPGRADE, "ctrl-0", 600.0)[0] == "done"
    assert world.start(Op.UPGRADE, "ctrl-0", 700.0) == 700.0
    unit = _unit(world, "ctrl-0")
    assert unit["version"] == str(TARGET)
    assert unit["upgrade_count"] == 1
    assert unit["upgrades"] == [{"start": 0.0, "end": 600.0}]
    assert world.status(Op.UPGRADE, "ctrl-0", 700.0)[0] == "done"


def test_status_follows_time() -> None:
    """An operation is not_started, then running until its end, then done."""
    world = _world()
    assert world.status(Op.UPGRADE, "nsx-mgr", 0.0)[0] == "not_started"
    world.start(Op.UPGRADE, "nsx-mgr", 10.0)
    assert world.status(Op.UPGRADE, "nsx-mgr", 1209.0)[0] == "running"
    assert world.status(Op.UPGRADE, "nsx-mgr", 1210.0)[0] == "done"
    assert world.time == 1210.0


def test_manager_api_is_down_during_its_own_upgrade() -> None:
    """While the manager upgrades its API answers 503 for a while (ops.status raises a
    transient error), then answers again."""
    world = _world()
    world.start(Op.UPGRADE, "nsx-mgr", 0.0)
    assert ops.status(world, Op.UPGRADE, "nsx-mgr", 30.0).state == "running"
    with pytest.raises(TransientAdapterError):
        ops.status(world, Op.UPGRADE, "nsx-mgr", ops.MANAGER_OUTAGE_FROM_S + 1)
    assert ops.status(world, Op.UPGRADE, "nsx-mgr", 1200.0).state == "done"


def test_drs_evacuation_skips_hosts_in_or_entering_maintenance() -> None:
    """Fully automated DRS moves a host's powered-on VMs only to hosts of its cluster that
    are neither in nor entering maintenance; powered-off VMs stay."""
    inventory = make_inventory([(Drs.FULLY_AUTOMATED,
                                 ((True, True, False), (), (True,), ()))])
    world = _world(inventory)
    world.start(Op.ENTER_MAINTENANCE, "esx-0-1", 0.0)  # no VMs: in maintenance at once
    world.start(Op.ENTER_MAINTENANCE, "esx-0-2", 0.0)  # one VM: entering for 30 s
    world.advance(1.0)
    assert world.units["esx-0-1"].in_maintenance
    assert not world.units["esx-0-2"].in_maintenance
    end = world.start(Op.ENTER_MAINTENANCE, "esx-0-0", 1.0)
    assert end == 61.0  # two vMotions of 30 s
    world.advance(100.0)
    hosts = {v["id"]: v["host"] for v in world.snapshot()["vms"]}
    assert hosts == {"vm-0-0-0": "esx-0-3", "vm-0-0-1": "esx-0-3", "vm-0-0-2": "esx-0-0",
                     "vm-0-2-0": "esx-0-3"}
    assert world.running_vms("esx-0-0", 100.0) == []


def test_drs_refuses_when_no_host_can_receive() -> None:
    """With every other host of the cluster in maintenance DRS cannot evacuate: refused."""
    world = _world(make_inventory([(Drs.FULLY_AUTOMATED, ((True,), ()))]))
    world.start(Op.ENTER_MAINTENANCE, "esx-0-1", 0.0)
    with pytest.raises(TransientAdapterError, match="no host"):
        world.start(Op.ENTER_MAINTENANCE, "esx-0-0", 0.0)


@pytest.mark.parametrize("drs", [Drs.MANUAL, Drs.OFF])
def test_manual_drs_maintenance_waits_for_evacuation(drs: Drs) -> None:
    """Without fully automated DRS, entering maintenance waits (no end) until the
    orchestrator's evacuation has moved the powered-on VMs; then it ends."""
    world = _world(make_inventory([(drs, ((True, True), ()))]))
    assert world.start(Op.ENTER_MAINTENANCE, "esx-0-0", 0.0) is None
    assert world.status(Op.ENTER_MAINTENANCE, "esx-0-0", 5000.0)[0] == "running"
    assert not world.units["esx-0-0"].in_maintenance
    moves = (("vm-0-0-0", "esx-0-1"), ("vm-0-0-1", "esx-0-1"))
    assert world.start(Op.EVACUATE, "esx-0-0", 5000.0, moves) == 5060.0
    assert world.status(Op.ENTER_MAINTENANCE, "esx-0-0", 5059.0)[0] == "running"
    assert world.status(Op.ENTER_MAINTENANCE, "esx-0-0", 5060.0)[0] == "done"
    assert world.units["esx-0-0"].in_maintenance
    vm = next(v for v in world.snapshot()["vms"] if v["id"] == "vm-0-0-1")
    assert vm["host"] == "esx-0-1"
    assert vm["moves"] == [{"at": 5060.0, "from": "esx-0-0", "to": "esx-0-1"}]


def test_incomplete_evacuation_fails_the_entry() -> None:
    """An evacuation that leaves a powered-on VM behind makes the entry fail."""
    world = _world(make_inventory([(Drs.MANUAL, ((True, True), ()))]))
    world.start(Op.ENTER_MAINTENANCE, "esx-0-0", 0.0)
    world.start(Op.EVACUATE, "esx-0-0", 0.0, (("vm-0-0-0", "esx-0-1"),))
    state, detail = world.status(Op.ENTER_MAINTENANCE, "esx-0-0", 100.0)
    assert state == "failed"
    assert "still powered on" in detail
    assert not world.units["esx-0-0"].in_maintenance
    assert all(m["end"] is not None for m in _unit(world, "esx-0-0")["maintenance"])


def test_evacuation_refuses_bad_destinations() -> None:
    """VMs move only within their cluster (else an error) and never to a host in
    maintenance (refused: transient)."""
    world = _world(make_inventory([(Drs.MANUAL, ((True,), (), ())), (Drs.MANUAL, ((), ()))]))
    with pytest.raises(AdapterError, match="not in its cluster"):
        world.start(Op.EVACUATE, "esx-0-0", 0.0, (("vm-0-0-0", "esx-1-0"),))
    world.start(Op.ENTER_MAINTENANCE, "esx-0-1", 0.0)
    with pytest.raises(TransientAdapterError, match="maintenance"):
        world.start(Op.EVACUATE, "esx-0-0", 0.0, (("vm-0-0-0", "esx-0-1"),))


def test_exit_cancels_an_entry_waiting_for_evacuation() -> None:
    """Leaving maintenance while the entry still waits for evacuation cancels the entry:
    the host no longer counts as entering and its maintenance interval is closed."""
    world = _world(make_inventory([(Drs.MANUAL, ((True,), (), ()))]))
    world.start(Op.ENTER_MAINTENANCE, "esx-0-0", 0.0)
    assert world.start(Op.EXIT_MAINTENANCE, "esx-0-0", 50.0) == 50.0
    assert world.status(Op.EXIT_MAINTENANCE, "esx-0-0", 50.0)[0] == "done"
    assert world.status(Op.ENTER_MAINTENANCE, "esx-0-0", 50.0)[0] == "failed"
    assert _unit(world, "esx-0-0")["maintenance"] == [{"start": 0.0, "end": 50.0}]
    world.start(Op.ENTER_MAINTENANCE, "esx-0-2", 60.0)  # esx-0-0 may receive VMs again
    world.start(Op.EVACUATE, "esx-0-1", 60.0, ())


def test_exit_waits_for_a_running_upgrade_and_abandons_a_hung_one() -> None:
    """A host leaves maintenance only once its upgrade ended: refused while it runs; an
    upgrade that hangs is abandoned (its interval closed) by leaving maintenance."""
    inventory = make_inventory([(Drs.FULLY_AUTOMATED, ((), ()))],
                               faults=[Fault("esx-0-1", Op.UPGRADE, FaultKind.HANG)])
    world = _world(inventory)
    for host in ("esx-0-0", "esx-0-1"):
        world.start(Op.ENTER_MAINTENANCE, host, 0.0)
        world.start(Op.UPGRADE, host, 0.0)
    with pytest.raises(TransientAdapterError, match="upgrading"):
        world.start(Op.EXIT_MAINTENANCE, "esx-0-0", 100.0)
    world.start(Op.EXIT_MAINTENANCE, "esx-0-1", 100.0)
    world.advance(100.0)
    assert _unit(world, "esx-0-1")["upgrades"] == [{"start": 0.0, "end": 100.0}]
    assert not world.units["esx-0-1"].in_maintenance
    assert world.start(Op.EXIT_MAINTENANCE, "esx-0-0", 900.0) == 900.0


def test_faults_apply_by_attempt() -> None:
    """Faults hit the first ``times`` attempts of their (unit, op), then the operation
    works: refuse raises, fail ends failed, timeout is slow, hang never ends."""
    inventory = make_inventory(faults=[
        Fault("edge-0-0", Op.UPGRADE, FaultKind.REFUSE, times=2),
        Fault("edge-0-1", Op.UPGRADE, FaultKind.FAIL),
        Fault("ctrl-0", Op.UPGRADE, FaultKind.TIMEOUT),
        Fault("nsx-mgr", Op.UPGRADE, FaultKind.HANG),
    ])
    world = _world(inventory)
    for attempt in (1, 2):
        with pytest.raises(TransientAdapterError, match="refused"):
            world.start(Op.UPGRADE, "edge-0-0", float(attempt))
    assert world.start(Op.UPGRADE, "edge-0-0", 3.0) == 603.0
    assert world.attempts[("edge-0-0", "upgrade")] == 3

    world.start(Op.UPGRADE, "edge-0-1", 0.0)
    assert world.status(Op.UPGRADE, "edge-0-1", 600.0)[0] == "failed"
    assert world.units["edge-0-1"].version != str(TARGET)
    world.start(Op.UPGRADE, "edge-0-1", 700.0)
    assert world.status(Op.UPGRADE, "edge-0-1", 1300.0)[0] == "done"
    assert _unit(world, "edge-0-1")["upgrade_count"] == 2

    assert world.start(Op.UPGRADE, "ctrl-0", 0.0) == TIMEOUT_FACTOR * 600 + TIMEOUT_EXTRA_S

    assert world.start(Op.UPGRADE, "nsx-mgr", 0.0) is None
    assert world.status(Op.UPGRADE, "nsx-mgr", 100_000.0)[0] == "running"
    assert world.start(Op.UPGRADE, "nsx-mgr", 100_000.0) == 101_200.0  # started again
    assert _unit(world, "nsx-mgr")["upgrades"] == [
        {"start": 0.0, "end": 100_000.0}, {"start": 100_000.0, "end": None}]


def test_operations_check_their_unit() -> None:
    """System steps run on their pseudo-unit only; host operations on hosts only."""
    world = _world()
    with pytest.raises(AdapterError):
        world.start(Op.PRECHECK, "esx-0-0", 0.0)
    with pytest.raises(AdapterError):
        world.start(Op.ENTER_MAINTENANCE, "edge-0-0", 0.0)
    with pytest.raises(AdapterError):
        world.start(Op.UPGRADE, "nobody", 0.0)
    assert world.start(Op.PRECHECK, SYSTEM, 0.0) == 60.0


def test_snapshot_has_the_sim_show_contract_keys() -> None:
    """The snapshot carries DESIGN's ``sim show`` keys and types, and is plain JSON."""
    world = _world(make_inventory([(Drs.FULLY_AUTOMATED, ((True, False), ()))],
                                  edge_clusters=(2,), controllers=3))
    world.start(Op.ENTER_MAINTENANCE, "esx-0-0", 0.0)
    world.start(Op.UPGRADE, "esx-0-0", 60.0)
    world.advance(100.0)
    snap = json.loads(json.dumps(world.snapshot()))
    assert {"time", "units", "vms"} <= set(snap)
    assert snap["time"] == 100.0
    kinds = {}
    for unit in snap["units"]:
        assert {"id", "kind", "group", "version", "in_maintenance", "upgrade_count",
                "upgrades", "maintenance"} <= set(unit)
        assert isinstance(unit["in_maintenance"], bool)
        assert unit["upgrade_count"] == len(unit["upgrades"])
        for interval in unit["upgrades"] + unit["maintenance"]:
            assert set(interval) == {"start", "end"}
        kinds[unit["id"]] = unit["kind"]
    assert sorted(set(kinds.values())) == ["controller", "edge", "host", "manager"]
    host = next(u for u in snap["units"] if u["id"] == "esx-0-0")
    assert host["group"] == "cluster-0"
    assert host["upgrades"] == [{"start": 60.0, "end": None}]  # open: still upgrading
    assert host["maintenance"] == [{"start": 0.0, "end": None}]
    for vm in snap["vms"]:
        assert {"id", "host", "powered_on"} <= set(vm)
        assert isinstance(vm["powered_on"], bool)


def test_store_round_trip(tmp_path: Path) -> None:
    """A world flushed to the state directory loads back equal, and operations that were
    in flight when it was stored complete after the load exactly as in the original."""
    inventory = make_inventory([(Drs.MANUAL, ((True,), ())), (Drs.FULLY_AUTOMATED, ((True,), ()))],
                               faults=[Fault("edge-0-0", Op.UPGRADE, FaultKind.REFUSE)])
    world = _world(inventory)
    store = WorldStore(tmp_path / FILENAME)
    store.create(world)
    with pytest.raises(TransientAdapterError):
        world.start(Op.UPGRADE, "edge-0-0", 0.0)
    world.start(Op.ENTER_MAINTENANCE, "esx-1-0", 0.0)
    world.start(Op.ENTER_MAINTENANCE, "esx-0-0", 0.0)  # waits for an evacuation
    world.start(Op.EVACUATE, "esx-0-0", 10.0, (("vm-0-0-0", "esx-0-1"),))
    world.start(Op.UPGRADE, "edge-0-0", 20.0)
    world.advance(25.0)
    store.flush(world)
    store.close()

    again = WorldStore(tmp_path / FILENAME)
    loaded = again.load(inventory)
    assert loaded.snapshot() == world.snapshot()
    assert loaded.attempts == world.attempts
    for w in (world, loaded):
        assert w.status(Op.ENTER_MAINTENANCE, "esx-0-0", 39.0)[0] == "running"
        w.advance(700.0)
    assert loaded.snapshot() == world.snapshot()
    assert loaded.units["edge-0-0"].version == str(TARGET)
    assert loaded.units["esx-0-0"].in_maintenance
    assert loaded.units["esx-1-0"].in_maintenance
    again.close()


def test_store_refuses_to_overwrite(tmp_path: Path) -> None:
    """Creating a world where one is stored already is an error, not an overwrite."""
    store = WorldStore(tmp_path / FILENAME)
    store.create(_world())
    with pytest.raises(Exception, match="already holds"):
        store.create(_world())
    store.close()
    assert WorldStore.exists(tmp_path)


def test_a_world_that_tracks_no_changes_keeps_no_move_history() -> None:
    """The estimate's world (no store writes it) moves VMs exactly as a stored world does,
    without keeping each move: 400,000 records on 100,000 hosts (issue 23 item 4)."""
    inventory = make_inventory([(Drs.MANUAL, ((True, True), ()))])
    worlds = [World(inventory, TARGET), World(inventory, TARGET, track_changes=False)]
    moves = (("vm-0-0-0", "esx-0-1"), ("vm-0-0-1", "esx-0-1"))
    for world in worlds:
        world.start(Op.ENTER_MAINTENANCE, "esx-0-0", 0.0)
        world.start(Op.EVACUATE, "esx-0-0", 0.0, moves)
        assert world.status(Op.ENTER_MAINTENANCE, "esx-0-0", 60.0)[0] == "done"
    kept, untracked = ({v.id: v for v in w.vms.values()} for w in worlds)
    assert {k: v.host for k, v in kept.items()} == {k: v.host for k, v in untracked.items()}
    assert kept["vm-0-0-1"].moves == [(60.0, "esx-0-0", "esx-0-1")]
    assert all(not v.moves for v in untracked.values())


def test_a_world_that_tracks_no_changes_answers_as_a_stored_one_and_keeps_less() -> None:
    """The estimate's world answers every start and status as a stored world does, asked
    again after an operation ended too, while it keeps neither histories nor a record of
    its own per settled operation (issue 23 item 4: 100,000 hosts' estimate in 300 MiB)."""
    inventory = make_inventory([(Drs.MANUAL, ((True, True), (), ())),
                                (Drs.FULLY_AUTOMATED, ((True,), (False,)))])
    worlds = [World(inventory, TARGET), World(inventory, TARGET, track_changes=False)]
    evacuate = (("vm-0-0-0", "esx-0-1"), ("vm-0-0-1", "esx-0-2"))
    home = (("vm-0-0-0", "esx-0-0"), ("vm-0-0-1", "esx-0-0"))
    calls: list[tuple[str, Op, str, float, tuple[tuple[str, str], ...]]] = [
        ("start", Op.ENTER_MAINTENANCE, "esx-1-0", 0.0, ()),
        ("start", Op.ENTER_MAINTENANCE, "esx-0-0", 0.0, ()),
        ("start", Op.EVACUATE, "esx-0-0", 0.0, evacuate),
    ]
    for at in (0.0, 59.0, 60.0, 61.0, 200.0):
        calls += [("status", op, host, at, ()) for host in ("esx-0-0", "esx-1-0")
                  for op in (Op.ENTER_MAINTENANCE, Op.EVACUATE)]
    for host in ("esx-0-0", "esx-1-0"):
        calls += [("start", Op.UPGRADE, host, 200.0, ()), ("status", Op.UPGRADE, host, 5000.0, ()),
                  ("start", Op.EXIT_MAINTENANCE, host, 5000.0, ()),
                  ("status", Op.EXIT_MAINTENANCE, host, 5000.0, ()),
                  ("status", Op.UPGRADE, host, 5001.0, ()),
                  ("status", Op.ENTER_MAINTENANCE, host, 5001.0, ()),
                  ("start", Op.UPGRADE, host, 5001.0, ()),
                  ("start", Op.EXIT_MAINTENANCE, host, 5001.0, ())]
    calls += [("start", Op.RESTORE, "esx-0-0", 5002.0, home),
              ("status", Op.RESTORE, "esx-0-0", 6000.0, ()),
              ("status", Op.EVACUATE, "esx-0-0", 6000.0, ()),
              ("start", Op.ENTER_MAINTENANCE, "esx-0-1", 6000.0, ()),
              ("status", Op.ENTER_MAINTENANCE, "esx-0-1", 6000.0, ())]
    answers: list[list[object]] = [[], []]
    for (call, op, unit, at, moves) in calls:
        for world, seen in zip(worlds, answers, strict=True):
            if call == "start":
                seen.append(world.start(op, unit, at, moves))
            else:
                seen.append(world.status(op, unit, at))
    assert answers[0] == answers[1]
    stored, estimating = worlds
    assert [(v.id, v.host) for v in stored.vms.values()] == \
        [(v.id, v.host) for v in estimating.vms.values()]
    assert [(u.version, u.in_maintenance) for u in stored.units.values()] == \
        [(u.version, u.in_maintenance) for u in estimating.units.values()]
    assert stored.units["esx-0-0"].upgrades and not estimating.units["esx-0-0"].upgrades
    assert len({id(r) for r in stored.ops.values()}) == len(stored.ops)
    # every settled operation shares one record per operation kind
    assert len({id(r) for r in estimating.ops.values()}) <= len(Op)
    assert not estimating.attempts
