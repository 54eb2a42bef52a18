"""A new run where an aborted one was, and resume's refusal of an aborted run.

``abort`` (:mod:`upgrade.shell.run_records`) closes a run for good.  The next ``run`` in that
state directory moves the old record under ``runs/`` and starts afresh, but the
target system is not reset (NSX-T 2.x has no rollback): with the simulated
adapter the world in the state directory stays as the aborted run left it, so
the new run plans its evacuations from where the VMs are now and its clock goes
on from the world's time.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from upgrade.adapters.base import Adapter
from upgrade.adapters.simulated import SimulatedAdapter
from upgrade.clock import Clock, RealClock, VirtualClock
from upgrade.errors import AbortedError, RefusedError
from upgrade.prepare.planning import Prepared, prepare_loaded
from upgrade.render.live import Display
from upgrade.shell.dirstate import Holds, read_now
from upgrade.shell.journal import Journal
from upgrade.shell.run_records import archive_aborted, world_placement
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


@contextlib.contextmanager
def archived_if_aborted(state_dir: Path, display: Display) -> Iterator[None]:
    """Before a new run in ``state_dir``: move an aborted run's record under ``runs/``."""
    if read_now(state_dir).holds is not Holds.ABORTED:
        yield
        return
    archived = archive_aborted(state_dir)
    if archived is not None:
        display.line(f"the aborted run in {state_dir} is kept in {archived}; starting afresh "
                     "(the target system stays as the aborted run left it)")
    yield


def refuse_aborted(state_dir: Path, journal: Journal) -> None:
    """An aborted run is closed for good: resume refuses it (exit 1, "aborted")."""
    text = journal.get_meta("aborted")
    if text is None:
        return
    reason = json.loads(text).get("reason", "")
    raise AbortedError(
        f"the run in {state_dir} was aborted ({reason}); it cannot be resumed. Start "
        f"afresh with `nsxt-upgrade run PLAYBOOK --state-dir {state_dir}` (the aborted "
        f"run's journal is kept under {state_dir}/runs/)"
    )
