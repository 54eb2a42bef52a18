"""The hostile corpus, part two: the files nsxt-upgrade writes and reads back, tampered.

`plan --out` writes a saved plan that `run --plan` reads; a run writes its journal
(records and engine snapshots) that `status`, `resume`, `verify`, `report` and `abort`
read.  Whoever can write to those files can hand the commands anything.  Each case runs
as a real process under the same address-space limit and timeout as the input corpus
(:mod:`tests.inputs.test_hostile`): one line on stderr naming the file and what is wrong,
no traceback, the documented exit code (a saved plan: 2, "the plan file is not valid or
was altered" or "not a saved plan"; a journal: 1, naming the record or snapshot), and
nothing written.  Issue 21 items 3 and 4, as found.
"""

from __future__ import annotations

import copy
import json
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.inputs.test_hostile import LAB, MEMORY_LIMIT, TIMEOUT_S
from tests.run_support import ENV, copy_playbooks, edit, world_apart

# -- saved plans ------------------------------------------------------------------------------

ALTERED = "the plan file is not valid or was altered"


def _set(path: list[Any], value: Any) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        target = doc
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return change


#: name -> (how the saved plan's JSON is changed, part of the one-line message)
PLAN_EDITS: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "fingerprints-null": (_set(["saved_plan", "fingerprints"], None),
                          "saved_plan.fingerprints is not a mapping"),
    "playbook-path-int": (_set(["saved_plan", "playbook_path"], 5),
                          "saved_plan.playbook_path is not a path"),
    "acks-string": (_set(["saved_plan", "acks"], "edge-connectivity-degraded"),
                    "saved_plan.acks is not a list"),
    "fingerprint-short": (_set(["saved_plan", "fingerprints", "inventory"], "abc"),
                          "fingerprints.inventory is not a sha256"),
    "summary-list": (_set(["saved_plan", "inventory_summary"], [1, 2]),
                     "inventory_summary is not a mapping"),
    "hand-edited-parallelism": (_set(["phases", 3, "groups", 0, "max_parallel"], 4),
                                "edited by hand"),
    "hand-edited-estimate": (_set(["estimated_duration_s"], 60),
                             "edited by hand"),
}


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def _bounded(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``nsxt-upgrade ARGS`` as a real process under the corpus's memory limit and timeout."""
    return subprocess.run([sys.executable, "-m", "upgrade", *(str(a) for a in args)],
                          capture_output=True, text=True, timeout=TIMEOUT_S,
                          preexec_fn=_limit_memory, env=ENV, cwd=cwd, stdin=subprocess.DEVNULL,
                          check=False)


def _one_line(proc: subprocess.CompletedProcess[str], code: int, *fragments: str) -> str:
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert len(lines[0]) < 1000, lines[0][:1000]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved plan of the lab playbook (`plan --out`)."""
    out = tmp_path_factory.mktemp("saved") / "plan.json"
    proc = subprocess.run([sys.executable, "-m", "upgrade", "plan", str(LAB), "--out", str(out)],
                          capture_output=True, text=True, env=ENV, check=False)
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.mark.parametrize("name", sorted(PLAN_EDITS))
def test_a_tampered_saved_plan(name: str, saved: Path, tmp_path: Path) -> None:
    """Wrong types and hand edits: exit 2, one line naming the file and what is wrong;
    no state dir is made."""
    change, fragment = PLAN_EDITS[name]
    doc = copy.deepcopy(json.loads(saved.read_text(encoding="utf-8")))
    change(doc)
    bad = tmp_path / f"{name}.json"
    bad.write_text(json.dumps(doc), encoding="utf-8")
    state_dir = tmp_path / "state"
    proc = _bounded("run", "--plan", bad, "--yes", "--state-dir", state_dir, cwd=tmp_path)
    _one_line(proc, 2, str(bad), ALTERED, fragment)
    assert proc.stdout == ""
    assert not state_dir.exists()


def test_a_hand_edited_plan_is_not_blamed_on_another_version(saved: Path,
                                                              tmp_path: Path) -> None:
    """The issue's case: a hand-edited plan used to be refused as "another nsxt-upgrade
    version?"; it is named as altered."""
    doc = json.loads(saved.read_text(encoding="utf-8"))
    doc["phases"][3]["groups"][0]["units"].reverse()
    bad = tmp_path / "reordered.json"
    bad.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    proc = _bounded("run", "--plan", bad, "--yes", "--state-dir", tmp_path / "s", cwd=tmp_path)
    line = _one_line(proc, 2, ALTERED, "edited by hand")
    assert "version" not in line


@pytest.mark.parametrize("shape", ["deep-array", "deep-object", "deep-in-saved-plan"])
def test_deep_json_is_refused_before_parsing(shape: str, saved: Path, tmp_path: Path) -> None:
    """100,000 levels of nesting (a RecursionError traceback before): refused by depth,
    in bounded time and memory."""
    bad = tmp_path / f"{shape}.json"
    if shape == "deep-array":
        bad.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    elif shape == "deep-object":
        bad.write_text('{"a":' * 100_000 + "1" + "}" * 100_000, encoding="utf-8")
    else:
        text = saved.read_text(encoding="utf-8")
        bad.write_text(text.replace('"acks": [', '"acks": [' + "[" * 100_000 + "]" * 100_000
                                    + ","), encoding="utf-8")
    proc = _bounded("run", "--plan", bad, "--yes", "--state-dir", tmp_path / "s", cwd=tmp_path)
    _one_line(proc, 2, str(bad), ALTERED, "nested more than 32 levels")


def test_millions_of_small_arrays_are_refused_unparsed(tmp_path: Path) -> None:
    """Two million `[]` (a few MB, each a Python list once parsed): refused by count."""
    bad = tmp_path / "pairs.json"
    bad.write_text("[" + "[]," * 2_000_000 + "[]]", encoding="utf-8")
    proc = _bounded("run", "--plan", bad, "--yes", "--state-dir", tmp_path / "s", cwd=tmp_path)
    _one_line(proc, 2, str(bad), ALTERED, "arrays and objects, more than the 1,000,000")


def test_strings_with_brackets_are_not_nesting(saved: Path, tmp_path: Path) -> None:
    """Brackets inside strings (a path with `[`) do not count as nesting: the plan runs."""
    books = copy_playbooks(tmp_path)
    nested = books / "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[{{{{{"
    shutil.copytree(books, nested)
    out = tmp_path / "plan.json"
    assert _bounded("plan", nested / LAB.name, "--out", out, cwd=tmp_path).returncode == 0
    proc = _bounded("run", "--plan", out, "--yes", "--state-dir", tmp_path / "s", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr


def test_a_fifo_as_the_plan_file_does_not_hang(tmp_path: Path) -> None:
    """A FIFO with no writer (it used to block forever): refused at once, exit 2."""
    fifo = tmp_path / "plan.json"
    os.mkfifo(fifo)
    proc = _bounded("run", "--plan", fifo, "--yes", "--state-dir", tmp_path / "s", cwd=tmp_path)
    _one_line(proc, 2, str(fifo), "not a regular file")


@pytest.mark.parametrize("name", ["/dev/zero", "huge"])
def test_a_device_or_a_huge_file_as_the_plan_is_not_read(name: str, tmp_path: Path) -> None:
    """/dev/zero is not read forever; a 3 GiB (sparse) file is refused by its size."""
    if name == "huge":
        bad = tmp_path / "huge.json"
        bad.write_bytes(b"")
        os.truncate(bad, 3 * 2**30)
        fragment = "more than the 64 MiB"
    else:
        bad, fragment = Path(name), "not a regular file"
    proc = _bounded("run", "--plan", bad, "--yes", "--state-dir", tmp_path / "s", cwd=tmp_path)
    _one_line(proc, 2, str(bad), fragment)


# -- journals: records and snapshots ----------------------------------------------------------


@pytest.fixture(scope="module")
def paused_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A lab run paused after its first host group (it has one engine snapshot)."""
    base = tmp_path_factory.mktemp("paused")
    books = copy_playbooks(base)
    edit(books / LAB.name, "pause_after_each_group: false", "pause_after_each_group: true")
    state_dir = base / "state"
    proc = subprocess.run([sys.executable, "-m", "upgrade", "run", str(books / LAB.name),
                           "--yes", "--state-dir", str(state_dir)],
                          capture_output=True, text=True, env=ENV, check=False)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    return state_dir


def _sql(statement: str) -> Callable[[Path], None]:
    def change(state_dir: Path) -> None:
        conn = sqlite3.connect(state_dir / "journal.sqlite")
        try:
            conn.execute(statement)
            conn.commit()
        finally:
            conn.close()
    return change


def _snapshot_names_another_unit(state_dir: Path) -> None:
    conn = sqlite3.connect(state_dir / "journal.sqlite")
    try:
        seq, payload = conn.execute(
            "SELECT seq, payload FROM snapshots ORDER BY seq DESC LIMIT 1").fetchone()
        assert '"esx-02"' in payload
        conn.execute("UPDATE snapshots SET payload = ? WHERE seq = ?",
                     (payload.replace('"esx-02"', '"esx-99"'), seq))
        conn.commit()
    finally:
        conn.close()


#: name -> (the damage, the commands that must name it, part of the message)
JOURNAL_DAMAGE: dict[str, tuple[Callable[[Path], None], tuple[str, ...], str]] = {
    "snapshot-unknown-unit": (_snapshot_names_another_unit, ("status", "resume"),
                              "is damaged (KeyError: 'esx-99')"),
    "snapshot-not-an-object": (_sql("UPDATE snapshots SET payload = '[1,2]'"),
                               ("status", "resume", "verify"),
                               "is damaged (not a JSON object)"),
    "snapshot-infinite-time": (
        _sql("""UPDATE snapshots SET payload = replace(payload, '"last_at":', """
             """'"last_at":1e999,"was":')"""),
        ("resume", "verify"), "snapshot after journal record"),
    "record-not-an-object": (_sql("UPDATE records SET payload = '[1,2]' WHERE seq = 5"),
                             ("verify", "report", "abort"),
                             "journal record 5 is damaged (its payload is list"),
    "record-infinite-time": (_sql("UPDATE records SET at = 1e999 WHERE seq = 5"),
                             ("verify", "report", "abort"),
                             "journal record 5 is damaged (its time is inf"),
}


@pytest.mark.parametrize("name", sorted(JOURNAL_DAMAGE))
def test_a_tampered_journal(name: str, paused_run: Path, tmp_path: Path) -> None:
    """Each command that reads the damaged part: exit 1, one line naming journal.sqlite and
    the damage; the journal's bytes are not changed by it."""
    damage, commands, fragment = JOURNAL_DAMAGE[name]
    for command in commands:
        state_dir = tmp_path / command
        shutil.copytree(paused_run, state_dir)
        damage(state_dir)
        before = (state_dir / "journal.sqlite").read_bytes()
        extra = ("--format", "json") if command == "report" else ()
        proc = _bounded(command, "--state-dir", state_dir, *extra, cwd=tmp_path)
        _one_line(proc, 1, f"{state_dir / 'journal.sqlite'}: ", fragment)
        assert proc.stdout == "", (command, proc.stdout)
        assert (state_dir / "journal.sqlite").read_bytes() == before, command


@pytest.mark.parametrize("layout", ["world in the journal", "world.sqlite apart"])
def test_a_zero_length_journal_over_a_worked_world(paused_run: Path, tmp_path: Path,
                                                   layout: str) -> None:
    """The issue's case: journal.sqlite emptied (0 bytes) beside a world the run worked on.
    `resume` used to say "interrupted while starting ... start it again with run", and
    `run` then refused: `resume`, `run` and `abort` exit 1 naming the empty journal, and
    write nothing into it; `status` warns.  A run's world lives in its journal now and is
    emptied with it, so the trace named is run.log's; a state dir of the previous layout
    keeps its world.sqlite, and the world's trace is named."""
    state_dir = tmp_path / "state"
    shutil.copytree(paused_run, state_dir)
    trace = "records a run"
    if layout == "world.sqlite apart":
        world_apart(state_dir)
        trace = "shows a run"
    (state_dir / "journal.sqlite").write_bytes(b"")
    for name in ("journal.sqlite-wal", "journal.sqlite-shm"):
        (state_dir / name).unlink(missing_ok=True)
    for args in (("resume",), ("run", str(LAB), "--yes"), ("abort",)):
        proc = _bounded(*args, "--state-dir", state_dir, cwd=tmp_path)
        line = _one_line(proc, 1, f"{state_dir / 'journal.sqlite'} is empty (0 bytes)",
                         trace, "restore journal.sqlite from a backup")
        assert "start it again" not in line
        assert (state_dir / "journal.sqlite").stat().st_size == 0, args
    shown = _bounded("status", "--state-dir", state_dir, cwd=tmp_path)
    assert shown.returncode == 0 and "emptied or replaced" in shown.stdout
