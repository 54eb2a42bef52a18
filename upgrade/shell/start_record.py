"""What a run's state directory records when it starts, and the run read back from it.

Before its first journal record a run writes the operator's copies, ``playbook.yaml``,
``inventory.yaml`` and ``plan.json`` (the ``plan --format json`` document), and in the
journal's meta the playbook's path and sha256, the acks, the clock, the start time and
:data:`RUN_INPUT`: the plan and the inventory the engine is built with, as data (the
plan without its estimated chart, which only ``plan.json`` shows).

``resume``, ``status`` and ``verify`` rebuild the run from that record (:func:`load_run`):
the playbook is read once (it must be unchanged), and the inventory, the compatibility
verdict and the plan are the recorded ones, neither read again nor gated nor planned.
A state dir of an earlier version has no :data:`RUN_INPUT` and the plan JSON twice
(``plan.json`` and the ``plan`` meta): its plan is built again from the playbook and
``inventory.yaml`` with the recorded estimates, as that version did.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from upgrade.clock import Clock
from upgrade.core.engine import snapshot as tagged
from upgrade.core.engine.core import Engine
from upgrade.core.model import Inventory
from upgrade.core.plan import Plan
from upgrade.errors import InputError
from upgrade.inputs.inventory import dump_inventory, load_inventory
from upgrade.inputs.playbook import Loaded, check_against_inventory, load_playbook
from upgrade.prepare.planning import Prepared, prepare_loaded
from upgrade.render.jsontext import dumps_indented
from upgrade.render.plan_json import plan_to_json
from upgrade.shell.journal import Journal
from upgrade.shell.statedir import PLAN_FILE, rendered_plan
from upgrade.shell.window_calendar import policy_for

#: journal meta: the engine's inputs ``{"plan": ..., "inventory": ...}`` as tagged data
RUN_INPUT = "run_input"
#: journal meta: ``run --matrix FILE --strict`` as ``{"matrix": path or null, "strict": bool}``
COMPAT_OVERLAY = "compat_overlay"


@dataclasses.dataclass(frozen=True)
class CompatOverlay:
    """The compatibility data a run was started with beyond the playbook's own:
    ``run --matrix FILE`` (absolute) and ``--strict``."""

    matrix: Path | None = None
    strict: bool = False

    def to_json(self) -> str:
        """The journal meta value."""
        return json.dumps({"matrix": str(self.matrix.resolve()) if self.matrix else None,
                           "strict": self.strict})

    @classmethod
    def of(cls, journal: Journal) -> CompatOverlay:
        """What the run in ``journal`` recorded (none: an earlier version's run)."""
        text = journal.get_meta(COMPAT_OVERLAY)
        try:
            data = json.loads(text) if text else {}
            matrix = data.get("matrix")
            return cls(Path(matrix) if isinstance(matrix, str) and matrix else None,
                       data.get("strict") is True)
        except (ValueError, AttributeError):
            return cls()


def sha256_of(path: Path) -> str:
    """The sha256 of the file at ``path``, in hex."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def record_start(state_dir: Path, journal: Journal, prepared: Prepared,
                 acks: Sequence[str], clock: Clock,
                 overlay: CompatOverlay | None = None) -> None:
    """Write the copies of a new run's inputs (durably), then its start in the journal."""
    playbook_path = prepared.loaded.path
    _write_durably({
        state_dir / "playbook.yaml": playbook_path.read_bytes(),
        state_dir / "inventory.yaml": dump_inventory(prepared.inventory).encode(),
        state_dir / PLAN_FILE: dumps_indented(plan_to_json(prepared.plan),
                                              default=str).encode(),
    })
    run_input = {"plan": tagged.enc(dataclasses.replace(prepared.plan, schedule=())),
                 "inventory": tagged.enc(prepared.inventory)}
    journal.set_meta_many({
        "playbook_path": str(playbook_path.resolve()),
        "playbook_sha256": sha256_of(playbook_path),
        "acks": json.dumps(list(acks)),
        "clock": clock.to_json(),
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        RUN_INPUT: json.dumps(run_input, separators=(",", ":")),
        COMPAT_OVERLAY: (overlay or CompatOverlay()).to_json(),
    })


def _write_durably(files: Mapping[Path, bytes]) -> None:
    """Write each file and fsync it, then their directory: what the journal's start
    record refers to survives a power loss as the record itself does."""
    for path, data in files.items():
        with path.open("wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
    for directory in {path.parent for path in files}:
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def load_run(state_dir: Path, journal: Journal) -> Prepared:
    """The prepared run the run in ``state_dir`` started with (its playbook at
    ``loaded.path``, which must be where it was, unchanged: InputError otherwise)."""
    path_text = journal.get_meta("playbook_path")
    if path_text is None:
        raise InputError(
            f"the run in {state_dir} was interrupted while starting, before it recorded "
            f"anything: start it again with `nsxt-upgrade run PLAYBOOK --state-dir {state_dir}`"
        )
    playbook_path = Path(path_text)
    if not playbook_path.is_file():
        raise InputError(f"the run's playbook {playbook_path} is gone; restore it (a copy is "
                         f"in {state_dir / 'playbook.yaml'}) to resume")
    if sha256_of(playbook_path) != journal.get_meta("playbook_sha256"):
        raise InputError(
            f"{playbook_path} changed since this run started; a run continues with the "
            f"playbook it started with: restore it (a copy is in {state_dir / 'playbook.yaml'})"
            ", or start a new run with another --state-dir"
        )
    playbook = load_playbook(playbook_path)
    recorded = _run_input(journal)
    if recorded is not None:
        plan, inventory = recorded
        return Prepared.recorded(Loaded(playbook, inventory, playbook_path), inventory, plan)
    # an earlier version's state dir: plan again over the inventory it recorded.  The copy
    # of what a real manager reported keeps its names as they are (escaped when shown); a
    # simulated run's copy is the operator's inventory and is held to its rules
    acks = json.loads(journal.get_meta("acks") or "[]")
    simulated = playbook.inventory.adapter == "simulated"
    inventory = load_inventory(state_dir / "inventory.yaml", discovered=not simulated)
    if simulated:
        check_against_inventory(playbook, inventory, playbook_path)
    overlay = CompatOverlay.of(journal)  # `run --matrix`: the run's data, planned again
    return prepare_loaded(Loaded(playbook, inventory, playbook_path), acks,
                          recorded_plan=rendered_plan(state_dir, journal.get_meta),
                          matrix=overlay.matrix, strict=overlay.strict)


def _run_input(journal: Journal) -> tuple[Plan, Inventory] | None:
    """The recorded plan and inventory; None when the journal has none this version reads."""
    text = journal.get_meta(RUN_INPUT)
    if text is None:
        return None
    try:
        data = json.loads(text)
        plan, inventory = tagged.dec(data["plan"]), tagged.dec(data["inventory"])
    except (ValueError, TypeError, KeyError, AttributeError, ImportError):
        return None  # written by another version (a class moved): plan again instead
    if not isinstance(plan, Plan) or not isinstance(inventory, Inventory):
        return None
    return plan, inventory


def recorded_engine(prepared: Prepared, journal: Journal) -> Engine:
    """A fresh engine as the run built it: its plan and inventory, its playbook's policy
    with the maintenance window calendar it journaled (not yet fed an event)."""
    return Engine(prepared.plan, prepared.inventory, policy_for(prepared.playbook, journal))
