"""A new run over the target system an aborted run left (its world inherited).

``abort`` (:mod:`upgrade.shell.run_records`) closes a run for good (``resume`` then
refuses it: :mod:`upgrade.shell.dirstate`).  The next ``run`` in that
state directory moves the old record under ``runs/`` and starts afresh, but the
target system is not reset (NSX-T 2.x has no rollback): with the simulated
adapter the world in the state directory stays as the aborted run left it, so
the new run plans its evacuations from where the VMs are now and its clock goes
on from the world's time.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from upgrade.adapters.base import Adapter
from upgrade.adapters.simulated import SimulatedAdapter
from upgrade.clock import Clock, RealClock, VirtualClock
from upgrade.core.model import Inventory
from upgrade.errors import RefusedError
from upgrade.prepare.planning import Prepared, prepare_loaded
from upgrade.render.live import Display
from upgrade.shell.dirstate import Reading
from upgrade.shell.journal import Journal
from upgrade.shell.run_records import archive_aborted
from upgrade.shell.start_record import CompatOverlay


def replan_over_world(prepared: Prepared, acks: Sequence[str], state_dir: Path,
                      overlay: CompatOverlay) -> Prepared:
    """Plan again from where a simulated world (left by an aborted run) has its VMs and
    at the versions its units report, with the run's compatibility data (``--matrix``)."""
    if prepared.playbook.inventory.adapter != "simulated":
        return prepared
    placed = world_placement(state_dir, prepared.inventory)
    if placed is prepared.inventory:
        return prepared
    replanned = prepare_loaded(dataclasses.replace(prepared.loaded, inventory=placed), acks,
                               matrix=overlay.matrix, strict=overlay.strict)
    if not replanned.plan.runnable:
        raise RefusedError("the plan is refused:\n  " + "\n  ".join(replanned.plan.refusals))
    return replanned


def continue_world(clock: Clock, adapter: Adapter, journal: Journal) -> None:
    """A new run over a simulated world an aborted run left: its clock goes on from the
    world's time (operations the old run ended must not look as if still running)."""
    if not isinstance(adapter, SimulatedAdapter) or adapter.world.time <= clock.now():
        return
    if isinstance(clock, VirtualClock):
        clock.advance_to(adapter.world.time)
    elif isinstance(clock, RealClock):
        clock.base, clock.base_wall = adapter.world.time, time.time()
    journal.set_meta_many({"clock": clock.to_json(), "clock_origin": repr(clock.now())})


def archive_for_new_run(state_dir: Path, reading: Reading, display: Display) -> Reading:
    """Before a new run over an aborted one (``reading``: ABORTED, read under the lock):
    move its record under ``runs/`` and say so; returns the directory as it is now."""
    archived = archive_aborted(state_dir, reading)
    display.line(f"the aborted run in {state_dir} is kept in {archived}; starting afresh "
                 "(the target system stays as the aborted run left it)")
    return reading.archived()


def world_placement(state_dir: Path, inventory: Inventory) -> Inventory:
    """``inventory`` as the simulated world in ``state_dir`` has it now: its VMs where
    they are, and each unit at the version it reports.

    A new run over a world that an aborted run left must plan its evacuations from
    where the VMs are now, and leave the units already at the target alone, as a real
    manager and vCenter would report them; without a stored world the inventory is
    returned as it is.
    """
    from upgrade.core.versions import Version
    from upgrade.sim.store import read_world, world_in

    place = world_in(state_dir)
    world = read_world(place, inventory) if place is not None else None
    if world is None:
        return inventory
    reported = {u.id: Version.parse(str(u.version)) for u in world.units.values()}
    versions = tuple(sorted((unit, version) for unit, version in reported.items()
                            if unit in inventory.versions() and version != inventory.version))
    where = {vm.id: vm.host for vm in world.vms.values()}
    vms = {vm.id: vm for h in inventory.hosts for vm in h.vms}
    placed = all(where.get(vm) == h.id for h in inventory.hosts for vm in (v.id for v in h.vms))
    if placed and versions == inventory.unit_versions:
        return inventory
    hosts = inventory.hosts if placed else tuple(
        replace(h, vms=tuple(vms[v] for v, host in where.items() if host == h.id and v in vms))
        for h in inventory.hosts)
    return replace(inventory, hosts=hosts, unit_versions=versions)
