"""Where runs keep their state: ``./.nsxt-upgrade/<playbook name>`` unless told otherwise."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, overload

from upgrade.errors import InputError
from upgrade.readonly import can_write

ROOT = Path(".nsxt-upgrade")
#: the run's journal (see :mod:`upgrade.shell.journal`)
JOURNAL_FILE = "journal.sqlite"
#: a file whose presence asks the runner to pause (written by `nsxt-upgrade pause`)
PAUSE_FILE = "pause-requested"
#: the simulated world (see :mod:`upgrade.sim.store`)
WORLD = "world.sqlite"
#: the run's JSON-lines log (see :mod:`upgrade.render.live`)
RUN_LOG = "run.log"
#: the run's plan, as ``plan --format json`` prints it
PLAN_FILE = "plan.json"
#: journal meta of earlier versions: a second copy of :data:`PLAN_FILE` (read, never written)
OLD_PLAN = "plan"
#: what `run` writes while starting, before the journal's first record
STARTUP_FILES = ("playbook.yaml", "inventory.yaml", PLAN_FILE)


def default_state_dir(playbook_name: str) -> Path:
    """The state directory a run of ``playbook_name`` uses by default."""
    return ROOT / playbook_name


@overload
def find_run(state_dir: Path | None) -> Path: ...
@overload
def find_run(state_dir: Path | None, *, missing_ok: bool) -> Path | None: ...


def find_run(state_dir: Path | None, *, missing_ok: bool = False) -> Path | None:
    """The state directory to act on: the given one, or the only run under ./.nsxt-upgrade.

    Says only where; what the directory holds, and whether a command may act there, is
    :func:`upgrade.shell.dirstate.locate`'s to say.

    With ``missing_ok``, None when no --state-dir was given and there is no run at all.
    """
    if state_dir is not None:
        blocker = file_in_the_way(state_dir)
        if blocker == state_dir:
            raise InputError(f"--state-dir {state_dir} is a file, not a state directory")
        if blocker is not None:
            raise InputError(f"--state-dir {state_dir}: {blocker} is a file, so it holds no run")
        if not state_dir.is_dir():
            raise InputError(f"{state_dir} does not exist, so it holds no run; start one with "
                             f"`nsxt-upgrade run PLAYBOOK --state-dir {state_dir}`")
        return state_dir  # what it holds: upgrade.shell.dirstate
    runs = sorted(p.parent for p in ROOT.glob(f"*/{JOURNAL_FILE}")) if ROOT.is_dir() else []
    if not runs:
        if missing_ok:
            return None
        raise InputError(f"no run under {ROOT}/ (in {Path.cwd()}); start one with "
                         "`nsxt-upgrade run PLAYBOOK`, or name its directory with --state-dir")
    if len(runs) > 1:
        listed = ", ".join(str(r) for r in runs)
        raise InputError(f"several runs under {ROOT}/: {listed}; choose one with --state-dir")
    return runs[0]


def file_in_the_way(state_dir: Path) -> Path | None:
    """The file (not directory) at ``state_dir`` or at one of its parents, if any."""
    for path in (state_dir, *state_dir.parents):
        if path.exists() or path.is_symlink():
            return None if path.is_dir() else path
    return None


def writable_state_dir(state_dir: Path, doing: str) -> None:
    """Create ``state_dir`` if needed and check a runner can write there.

    Raises :class:`InputError` (exit 2: nothing has started) naming the path and the
    problem: a file in the way, a directory that cannot be created, or read-only storage.
    ``doing`` says what needed to write ("start a run", "resume").
    """
    blocker = file_in_the_way(state_dir)
    if blocker is not None:
        where = "it" if blocker == state_dir else f"{blocker}"
        raise InputError(f"{state_dir}: cannot be a state directory: {where} is a file; "
                         "name a directory with --state-dir")
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{state_dir}: cannot create the state directory "
                         f"({exc.strerror or exc}); name another one with --state-dir") from exc
    if not can_write(state_dir):
        raise InputError(f"{state_dir}: the state directory is not writable, so nsxt-upgrade "
                         f"cannot {doing} there (`nsxt-upgrade status --state-dir {state_dir}` "
                         "still reads it)")


def clear_startup(state_dir: Path, *, world: bool) -> None:
    """Remove what an interrupted start-up left, so that a new run starts from nothing.

    Only to be called while holding the lock, once the journal has no record (so no
    operation was ever started).  ``world``: also the simulated world, which only
    :mod:`upgrade.shell.dirstate` may say (an untouched world no earlier run left).
    """
    for name in STARTUP_FILES:
        (state_dir / name).unlink(missing_ok=True)
    if world:
        from upgrade.sim.store import drop_world

        drop_world(state_dir)


def rendered_plan(state_dir: Path, meta: Callable[[str], str | None]) -> dict[str, Any]:
    """The run's plan JSON (``plan --format json``); empty if its start was not recorded.

    ``meta`` reads the journal's meta (an earlier version's journal holds the copy itself).
    """
    text = meta(OLD_PLAN)
    if text is None and meta("playbook_path") is not None:
        path = state_dir / PLAN_FILE
        text = path.read_text(encoding="utf-8") if path.is_file() else None
    loaded: dict[str, Any] = json.loads(text or "{}")
    return loaded
