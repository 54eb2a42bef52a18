"""Golden journals: what each one is, how it is recorded, and how it is replayed.

A history is a directory under ``tests/histories/``:

* ``playbook.yaml`` and ``inventory.yaml``: the inputs (the shipped lab's, edited as the
  scenario says; the bundle is the shipped one, named by a relative path);
* ``history.json``: the commands that made it, their exit codes, the journal meta the run
  needs (its ``--ack`` ids), ``status --format json``'s state, phase and units at the end,
  and the plan's estimates as ``report --format json`` shows them (:data:`ESTIMATE_KEYS`);
* ``plan.json``: the plan the run recorded in its state directory (``plan --format json``,
  with its estimates), so a rebuilt state directory reports against the same estimates;
* ``journal.jsonl``: every journal record, one per line, as the journal stores them
  (``seq``, ``kind``, ``at``, and the canonical ``payload``).

:func:`record` makes one by running the CLI on a virtual clock (deterministic: the same
code records the same journal, byte for byte); :func:`rebuild` turns one back into a state
directory whose journal the shipped ``verify``, ``status`` and ``resume`` read.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.run_support import ENV, PLAYBOOKS, command
from upgrade.shell.drive import CRASH_ENV
from upgrade.shell.journal import Journal, dump_payload

HERE = Path(__file__).resolve().parent
JOURNAL = "journal.jsonl"
HISTORY = "history.json"
PLAN = "plan.json"
#: the status fields a history pins (the rest, such as started_at, varies run to run)
STATUS_KEYS = ("state", "phase", "units")
#: the planned (estimated) fields of ``report --format json`` a history pins, per phase and
#: unit, with the plan's whole duration
ESTIMATE_KEYS = ("planned_start_s", "planned_duration_s")


@dataclass(frozen=True)
class Step:
    """One CLI command of a scenario; ``{playbook}`` and ``{state}`` are filled in."""

    args: tuple[str, ...]
    exit_code: int
    #: SIGKILL the process right after this many journal commits (``CRASH_ENV``)
    kill_after_commits: int | None = None


@dataclass(frozen=True)
class Scenario:
    """A golden history: the lab's inputs edited by ``edit``, then ``steps`` in turn."""

    about: str
    steps: tuple[Step, ...]
    edit: Callable[[str, str], tuple[str, str]] = lambda playbook, inventory: (playbook,
                                                                                inventory)


RUN = Step(("run", "{playbook}", "--yes", "--state-dir", "{state}"), 0)
RESUME = Step(("resume", "--state-dir", "{state}"), 0)


def _pause_per_group(playbook: str, inventory: str) -> tuple[str, str]:
    return playbook.replace("pause_after_each_group: false",
                            "pause_after_each_group: true"), inventory


def _edge_fails(playbook: str, inventory: str) -> tuple[str, str]:
    return playbook, inventory + "faults:\n  - {unit: edge-02, op: upgrade, kind: fail}\n"


SCENARIOS = {
    "lab-run": Scenario("the shipped lab upgrade, start to end", (RUN,)),
    "crash-resume": Scenario(
        "the lab upgrade killed (SIGKILL) right after a commit in the hosts phase, before "
        "what it journaled was executed, then resumed: replay, reconciliation, the rest",
        (Step(RUN.args, -signal.SIGKILL, kill_after_commits=12), RESUME)),
    "failure-retry": Scenario(
        "the lab upgrade with edge-02's upgrade failing once: the run pauses (exit 3), "
        "then resume --retry-failed finishes it",
        (Step(RUN.args, 3), Step(("resume", "--state-dir", "{state}", "--retry-failed"), 0)),
        _edge_fails),
    "group-pauses": Scenario(
        "the lab upgrade with pause_after_each_group: it pauses after the first host group "
        "(exit 3) and a resume finishes it",
        (Step(RUN.args, 3), RESUME), _pause_per_group),
}


def lab_inputs() -> tuple[str, str]:
    """The shipped lab playbook (naming the shipped bundle from a history directory, and its
    inventory as ``inventory.yaml``) and inventory, as text."""
    playbook = (PLAYBOOKS / "lab-2.1-to-2.3.yaml").read_text(encoding="utf-8")
    inventory = (PLAYBOOKS / "lab-inventory.yaml").read_text(encoding="utf-8")
    playbook = playbook.replace("path: bundles/", "path: ../../../playbooks/bundles/")
    playbook = playbook.replace("source: lab-inventory.yaml", "source: inventory.yaml")
    return playbook, inventory


def _nsxt(step: Step, playbook: Path, state: Path) -> subprocess.CompletedProcess[str]:
    env = dict(ENV)
    if step.kill_after_commits is not None:
        env[CRASH_ENV] = str(step.kill_after_commits)
    args = [a.format(playbook=playbook, state=state) for a in step.args]
    return subprocess.run(command(*args), capture_output=True, text=True, env=env,
                          timeout=120, check=False)


def record(name: str, scenario: Scenario, root: Path = HERE) -> Path:
    """Write the inputs of ``scenario`` to ``root/name`` and record its journal there."""
    where = root / name
    where.mkdir(parents=True, exist_ok=True)
    playbook, inventory = scenario.edit(*lab_inputs())
    (where / "playbook.yaml").write_text(playbook, encoding="utf-8")
    (where / "inventory.yaml").write_text(inventory, encoding="utf-8")
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "state"
        for step in scenario.steps:
            done = _nsxt(step, where / "playbook.yaml", state)
            assert done.returncode == step.exit_code, \
                f"{name}: {' '.join(step.args)} exited {done.returncode}, not " \
                f"{step.exit_code}:\n{done.stdout}\n{done.stderr}"
        status = _nsxt(Step(("status", "--state-dir", "{state}", "--format", "json"), 0),
                       where / "playbook.yaml", state)
        shutil.copy(state / PLAN, where / PLAN)
        report = _nsxt(REPORT, where / "playbook.yaml", state)
        assert report.returncode == 0, f"{name}: report exited {report.returncode}: " \
            f"{report.stderr}"
        with Journal.open_readonly(state) as journal:
            acks = json.loads(journal.get_meta("acks") or "[]")
            lines = [json.dumps({"seq": r.seq, "kind": r.kind, "at": r.at,
                                 "payload": json.loads(dump_payload(r.payload))})
                     for r in journal.records()]
    doc = json.loads(status.stdout)
    history = {"about": scenario.about,
               "commands": [{"args": list(s.args), "exit_code": s.exit_code,
                             **({CRASH_ENV: s.kill_after_commits}
                                if s.kill_after_commits is not None else {})}
                            for s in scenario.steps],
               "meta": {"acks": acks},
               "status": {k: doc[k] for k in STATUS_KEYS},
               "estimate": estimates(json.loads(report.stdout))}
    (where / HISTORY).write_text(json.dumps(history, indent=2) + "\n", encoding="utf-8")
    (where / JOURNAL).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return where


#: the report whose planned figures a history pins
REPORT = Step(("report", "--state-dir", "{state}", "--format", "json", "-o", "-"), 0)


def estimates(report: dict[str, Any]) -> dict[str, Any]:
    """The plan's estimates in ``report`` (``report --format json``): its whole duration,
    and each phase's and unit's planned start and duration."""
    return {"planned_duration_s": report["planned_duration_s"],
            "phases": {p["name"]: [p[k] for k in ESTIMATE_KEYS] for p in report["phases"]},
            "units": {u["id"]: [u[k] for k in ESTIMATE_KEYS] for u in report["units"]}}


def records(where: Path) -> list[dict[str, Any]]:
    """The journal records of the history in ``where``."""
    text = (where / JOURNAL).read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def expected(where: Path) -> dict[str, Any]:
    """The history's ``history.json``."""
    doc: dict[str, Any] = json.loads((where / HISTORY).read_text(encoding="utf-8"))
    return doc


def rebuild(where: Path, state: Path, lines: list[dict[str, Any]] | None = None) -> Path:
    """A state directory holding the history of ``where`` (or ``lines`` instead of its
    journal), as the run left it: its journal (meta and records), inventory and plan copy.

    The playbook stays where it is (the journal names it, with its sha256).
    """
    lines = records(where) if lines is None else lines
    assert [r["seq"] for r in lines] == list(range(1, len(lines) + 1)), \
        f"{where / JOURNAL}: seqs are not 1, 2, 3, ..."
    playbook = where / "playbook.yaml"
    state.mkdir(parents=True)
    shutil.copy(where / "inventory.yaml", state / "inventory.yaml")
    shutil.copy(where / PLAN, state / PLAN)
    with Journal.open(state) as journal:
        journal.set_meta_many({
            "playbook_path": str(playbook),
            "playbook_sha256": hashlib.sha256(playbook.read_bytes()).hexdigest(),
            "acks": json.dumps(expected(where)["meta"]["acks"]),
            "clock": json.dumps({"kind": "virtual", "now": 0.0}),
        })
        journal.append([(r["kind"], r["at"], r["payload"]) for r in lines])
    return state
