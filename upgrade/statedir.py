"""Where runs keep their state: ``./.nsxt-upgrade/<playbook name>`` unless told otherwise."""

from __future__ import annotations

from pathlib import Path
from typing import overload

from upgrade.errors import InputError

ROOT = Path(".nsxt-upgrade")
JOURNAL = "journal.sqlite"
#: a file whose presence asks the runner to pause (written by `nsxt-upgrade pause`)
PAUSE_FILE = "pause-requested"


def default_state_dir(playbook_name: str) -> Path:
    """The state directory a run of ``playbook_name`` uses by default."""
    return ROOT / playbook_name


@overload
def find_run(state_dir: Path | None) -> Path: ...
@overload
def find_run(state_dir: Path | None, *, missing_ok: bool) -> Path | None: ...


def find_run(state_dir: Path | None, *, missing_ok: bool = False) -> Path | None:
    """The state directory to act on: the given one, or the only run under ./.nsxt-upgrade.

    With ``missing_ok``, None when no --state-dir was given and there is no run at all.
    """
    if state_dir is not None:
        if state_dir.exists() and not state_dir.is_dir():
            raise InputError(f"--state-dir {state_dir} is a file, not a state directory")
        if not state_dir.is_dir():
            raise InputError(f"{state_dir} does not exist, so it holds no run; start one with "
                             f"`nsxt-upgrade run PLAYBOOK --state-dir {state_dir}`")
        if not (state_dir / JOURNAL).is_file():
            raise InputError(f"{state_dir} holds no run (no {JOURNAL}); start one with "
                             f"`nsxt-upgrade run PLAYBOOK --state-dir {state_dir}`")
        return state_dir
    runs = sorted(p.parent for p in ROOT.glob(f"*/{JOURNAL}")) if ROOT.is_dir() else []
    if not runs:
        if missing_ok:
            return None
        raise InputError(f"no run under {ROOT}/ (in {Path.cwd()}); start one with "
                         "`nsxt-upgrade run PLAYBOOK`, or name its directory with --state-dir")
    if len(runs) > 1:
        listed = ", ".join(str(r) for r in runs)
        raise InputError(f"several runs under {ROOT}/: {listed}; choose one with --state-dir")
    return runs[0]
