"""State-directory faults met through the CLI: bad option values, start-ups that fail half
way, corrupt or missing journals, read-only storage, a file in the way, and a closed stdout.

Every case checks the rule behind it: one line naming the path and the problem, no
traceback, the documented exit code, and a state directory that `run` or `resume` (or,
read-only, `status`) can still use.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.run_support import ENV as RUN_ENV
from tests.run_support import LAB, command, copy_playbooks, nsxt, status_json, world_apart
from upgrade.cli.main import cli
from upgrade.shell.journal import Journal

EDGE_FAULT = "faults:\n  - {unit: edge-02, op: upgrade, kind: fail}\n"


def one_line_error(proc: subprocess.CompletedProcess[str], code: int, *needles: str) -> str:
    """The single stderr line of a refused command; checks exit code, no traceback."""
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def snapshot(directory: Path) -> dict[str, tuple[bytes, int]]:
    """Every file of ``directory`` with its bytes and mtime (ns), and the directory's own."""
    files = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in directory.iterdir()}
    files["."] = (b"", directory.stat().st_mtime_ns)
    return files



@pytest.fixture(scope="module")
def done_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The state dir of a finished lab run (copy it before changing anything)."""
    state_dir = tmp_path_factory.mktemp("done") / "state"
    assert nsxt("run", LAB, "--yes", "--state-dir", state_dir).returncode == 0
    return state_dir


@pytest.fixture(scope="module")
def paused_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The state dir of a lab run paused by a failed edge (hosts upgraded, edge-02 failed)."""
    books = copy_playbooks(tmp_path_factory.mktemp("books"))
    inventory = books / "lab-inventory.yaml"
    inventory.write_text(inventory.read_text(encoding="utf-8") + EDGE_FAULT, encoding="utf-8")
    state_dir = books.parent / "state"
    assert nsxt("run", books / LAB.name, "--yes", "--state-dir", state_dir).returncode == 3
    return state_dir


def copy_of(state_dir: Path, tmp_path: Path, name: str = "copy") -> Path:
    """A private copy of ``state_dir``."""
    target = tmp_path / name
    shutil.copytree(state_dir, target)
    return target


# -- item 4: option values, and start-ups that fail ------------------------------------------


BAD_SPEEDS = ["nan", "inf", "-inf", "0", "-1", "1e308", "2000000", "fast"]


@pytest.mark.parametrize("speed", BAD_SPEEDS)
def test_bad_speed_is_refused_at_parsing_and_writes_nothing(speed: str, tmp_path: Path) -> None:
    """`run|resume|emulate nsxt --speed X` with X not a finite number in [0.001, 1e6]: a
    click usage error (exit 2) naming --speed and the accepted range; no state dir made."""
    state_dir = tmp_path / "state"
    invocations = [
        ("run", LAB, "--yes", "--state-dir", state_dir, "--speed", speed),
        ("resume", "--state-dir", state_dir, "--speed", speed),
        ("emulate", "nsxt", "--inventory", LAB.parent / "lab-inventory.yaml",
         "--state-dir", state_dir, "--speed", speed),
    ]
    for args in invocations:
        proc = nsxt(*args)
        assert proc.returncode == 2, (args, proc.stderr)
        assert "Traceback" not in proc.stderr
        assert "Invalid value for '--speed'" in proc.stderr
        assert "0.001 to 1,000,000" in proc.stderr
        assert not state_dir.exists()


def test_other_numeric_options_are_bounded(tmp_path: Path) -> None:
    """`emulate nsxt --port` takes 0..65535 only; a good --speed still works."""
    for port in ("-1", "70000", "nan"):
        proc = nsxt("emulate", "nsxt", "--inventory", LAB.parent / "lab-inventory.yaml",
                    "--state-dir", tmp_path / "emu", "--port", port)
        assert proc.returncode == 2 and "Invalid value for '--port'" in proc.stderr
    fast = nsxt("run", LAB, "--yes", "--state-dir", tmp_path / "ok", "--speed", "1e6")
    assert fast.returncode == 0, fast.stderr


class Boom(RuntimeError):
    """The injected start-up failure."""


def _fail_adapter(*args: object, **kwargs: object) -> object:
    raise Boom("the adapter could not be made")


def _fail_first_append(self: Journal, records: object) -> list[int]:
    raise ValueError("Out of range float values are not JSON compliant")


@pytest.mark.parametrize("where", ["adapter", "first record"])
def test_a_failed_start_up_leaves_a_state_dir_run_can_use(
        where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A start-up that fails after the state dir was written (the adapter cannot be made,
    or the first journal batch cannot be stored, as `--speed nan` once did) leaves a dir
    that `status` calls an interrupted start, and where `run` then starts afresh, saying so,
    and finishes."""
    state_dir = tmp_path / "state"
    if where == "adapter":
        monkeypatch.setattr("upgrade.shell.session.make_adapter", _fail_adapter)
    else:
        monkeypatch.setattr(Journal, "append", _fail_first_append)
    failed = CliRunner().invoke(cli, ["run", str(LAB), "--yes", "--state-dir", str(state_dir)])
    assert isinstance(failed.exception, Boom | ValueError), failed.output
    monkeypatch.undo()
    assert (state_dir / "journal.sqlite").is_file() and (state_dir / "plan.json").is_file()

    shown = nsxt("status", "--state-dir", state_dir)
    assert shown.returncode == 0
    assert "a start was interrupted before its first step" in shown.stdout
    assert status_json(state_dir)["state"] == "not_started"
    again = nsxt("run", LAB, "--yes", "--state-dir", state_dir)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "an earlier start was interrupted before its first step" in again.stdout
    assert "starting afresh" in again.stdout
    assert status_json(state_dir)["state"] == "done"


def test_resume_also_begins_a_run_whose_start_up_failed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """After the same failed start-up, `resume` (instead of `run`) begins the run."""
    state_dir = tmp_path / "state"
    monkeypatch.setattr("upgrade.shell.session.make_adapter", _fail_adapter)
    CliRunner().invoke(cli, ["run", str(LAB), "--yes", "--state-dir", str(state_dir)])
    monkeypatch.undo()
    resumed = nsxt("resume", "--state-dir", state_dir)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "interrupted before its first step" in resumed.stdout
    assert status_json(state_dir)["state"] == "done"


# -- item 5: corrupt journal, a file in the way, read-only storage, a lost journal ------------


@pytest.mark.parametrize("damage", ["whole file", "pages"])
def test_a_corrupt_journal_is_one_line_exit_1_and_nothing_is_touched(
        damage: str, done_run: Path, tmp_path: Path) -> None:
    """Random bytes in journal.sqlite (instead of it, or over its pages past the header):
    `status` (text and json) and `resume` exit 1 with one line naming the file and saying
    it is not a journal; no file of the state dir changes."""
    state_dir = copy_of(done_run, tmp_path)
    journal = state_dir / "journal.sqlite"
    noise = os.urandom(6000)
    if damage == "whole file":
        journal.write_bytes(noise)
    else:
        data = bytearray(journal.read_bytes())
        data[4096:4096 + len(noise)] = noise
        journal.write_bytes(bytes(data))
    before = {name: data for name, (data, _) in snapshot(state_dir).items()}
    for args in (("status",), ("status", "--format", "json"), ("resume",)):
        proc = nsxt(*args, "--state-dir", state_dir)
        line = one_line_error(proc, 1, f"{journal}: not a journal (", "restore the file")
        if damage == "whole file":
            assert "file is not a database" in line
        assert proc.stdout == ""
    after = {name: data for name, (data, _) in snapshot(state_dir).items()}
    assert after == before


def test_a_corrupt_world_is_one_line_exit_1(paused_run: Path, tmp_path: Path) -> None:
    """Random bytes instead of world.sqlite: `resume` and `sim show` exit 1 with one line
    naming the file; the journal is untouched."""
    state_dir = copy_of(paused_run, tmp_path)
    (state_dir / "world.sqlite").write_bytes(os.urandom(5000))
    for name in ("world.sqlite-wal", "world.sqlite-shm"):
        (state_dir / name).unlink(missing_ok=True)
    journal = (state_dir / "journal.sqlite").read_bytes()
    for args in (("resume",), ("sim", "show")):
        one_line_error(nsxt(*args, "--state-dir", state_dir), 1,
                       f"{state_dir / 'world.sqlite'}: not a simulated world (")
    assert (state_dir / "journal.sqlite").read_bytes() == journal


def test_a_state_dir_under_a_file_is_one_line_exit_2(tmp_path: Path) -> None:
    """--state-dir below a regular file: `run` and `resume` exit 2 naming the file; `status`
    says there is no run because that path is a file."""
    blocker = tmp_path / "file"
    blocker.write_text("not a directory\n", encoding="utf-8")
    state_dir = blocker / "state"
    one_line_error(nsxt("run", LAB, "--yes", "--state-dir", state_dir), 2,
                   f"{state_dir}: cannot be a state directory: {blocker} is a file")
    one_line_error(nsxt("resume", "--state-dir", state_dir), 2, f"{blocker} is a file")
    one_line_error(nsxt("pause", "--state-dir", state_dir), 2, f"{blocker} is a file")
    shown = nsxt("status", "--state-dir", state_dir)
    assert shown.returncode == 0 and f"{blocker} is a file" in shown.stdout
    itself = nsxt("run", LAB, "--yes", "--state-dir", blocker)  # click's own usage error
    assert itself.returncode == 2 and "is a file" in itself.stderr


@contextlib.contextmanager
def read_only(directory: Path) -> Iterator[None]:
    """``directory`` on read-only storage: a read-only bind mount of itself (root bypasses
    file permissions, not a read-only mount); skips where mounting is not permitted."""
    if os.geteuid() != 0:
        modes = {p: p.stat().st_mode for p in [directory, *directory.iterdir()]}
        for path in modes:
            path.chmod(modes[path] & ~0o222)
        try:
            yield
        finally:
            for path, mode in modes.items():
                path.chmod(mode)
        return
    mounted = subprocess.run(["mount", "--bind", str(directory), str(directory)],
                             capture_output=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot bind-mount here: {mounted.stderr!r}")
    try:
        remount = subprocess.run(["mount", "-o", "remount,ro,bind", str(directory)],
                                 capture_output=True, check=False)
        if remount.returncode != 0:
            pytest.skip(f"cannot remount read-only here: {remount.stderr!r}")
        probe = directory / "probe"
        with pytest.raises(OSError):
            probe.write_text("x", encoding="utf-8")
        yield
    finally:
        subprocess.run(["umount", str(directory)], check=True)


@pytest.mark.parametrize("which", ["done", "paused"])
def test_status_and_sim_show_read_a_read_only_copy(which: str, done_run: Path,
                                                   paused_run: Path, tmp_path: Path) -> None:
    """On a read-only copy of a finished or paused state dir, `status` (text, json) and
    `sim show` answer as on the original, and nothing in the directory changes; `run`,
    `resume` and `pause` say in one line that it is not writable (exit 2)."""
    original = done_run if which == "done" else paused_run
    expected = status_json(original)
    expected_world = json.loads(nsxt("sim", "show", "--state-dir", original).stdout)
    state_dir = copy_of(original, tmp_path)
    before = snapshot(state_dir)
    with read_only(state_dir):
        doc = status_json(state_dir)
        assert doc == expected
        text = nsxt("status", "--state-dir", state_dir)
        assert text.returncode == 0 and f"run in {state_dir}: {which}" in text.stdout
        shown = nsxt("sim", "show", "--state-dir", state_dir)
        assert shown.returncode == 0, shown.stderr
        assert json.loads(shown.stdout) == expected_world
        table = nsxt("sim", "show", "--state-dir", state_dir, "--format", "text")
        assert table.returncode == 0 and "esx-01" in table.stdout
        one_line_error(nsxt("resume", "--state-dir", state_dir), 2,
                       f"{state_dir}: the state directory is not writable")
        one_line_error(nsxt("run", LAB, "--yes", "--state-dir", state_dir), 2,
                       "not writable")
        one_line_error(nsxt("pause", "--state-dir", state_dir), 2, "cannot ask for a pause")
    assert snapshot(state_dir) == before


def _without_wal_files(state_dir: Path) -> None:
    """Drop the empty -wal/-shm files a read-only reader leaves beside a closed database."""
    for db in ("journal.sqlite", "world.sqlite"):
        wal = state_dir / f"{db}-wal"
        assert not wal.exists() or wal.stat().st_size == 0
        wal.unlink(missing_ok=True)
        (state_dir / f"{db}-shm").unlink(missing_ok=True)


def test_status_opens_read_only_where_it_cannot_write(
        done_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process, with the "can this process write here" check answering no (what a
    read-only mount makes it answer): `status` and `sim show` work and write nothing, not
    even the -wal/-shm files a WAL reader would otherwise create. (As root a permission
    bit would not stop a write, so this proves the read-only open path is taken, and the
    unchanged listing, bytes and mtimes prove that path writes nothing.)"""
    state_dir = copy_of(done_run, tmp_path)
    _without_wal_files(state_dir)
    before = snapshot(state_dir)
    monkeypatch.setattr("upgrade.readonly.can_write", lambda directory: False)
    runner = CliRunner()
    shown = runner.invoke(cli, ["status", "--state-dir", str(state_dir), "--format", "json"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["state"] == "done"
    world = runner.invoke(cli, ["sim", "show", "--state-dir", str(state_dir)])
    assert world.exit_code == 0 and json.loads(world.output)["units"]
    assert snapshot(state_dir) == before


def test_status_reads_the_wal_of_a_killed_runner_on_read_only_storage(
        done_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A runner killed with committed data still in journal.sqlite-wal, copied without its
    -shm to storage that cannot be written: `status` still sees that data (it reads a
    private copy), and writes nothing in the state dir."""
    source = copy_of(done_run, tmp_path, "source")
    _without_wal_files(source)
    writer = Journal.open(source)  # stays open, like a killed runner: its WAL is not merged
    try:
        writer.set_meta("started_at", "2001-02-03T04:05:06+00:00")
        state_dir = tmp_path / "killed"
        state_dir.mkdir()
        for path in source.iterdir():
            if not path.name.endswith("-shm"):
                shutil.copy2(path, state_dir / path.name)
    finally:
        writer.close()
    assert (state_dir / "journal.sqlite-wal").stat().st_size > 0
    before = snapshot(state_dir)
    monkeypatch.setattr("upgrade.readonly.can_write", lambda directory: False)
    shown = CliRunner().invoke(cli, ["status", "--state-dir", str(state_dir), "--format",
                                     "json"])
    assert shown.exit_code == 0, shown.output
    doc = json.loads(shown.output)
    assert doc["state"] == "done" and doc["started_at"] == "2001-02-03T04:05:06+00:00"
    assert snapshot(state_dir) == before


@pytest.mark.parametrize("layout", ["world in the journal", "world.sqlite apart"])
def test_a_lost_journal_after_a_pause_is_reported_and_run_refuses(
        paused_run: Path, tmp_path: Path, layout: str) -> None:
    """journal.sqlite deleted after a pause, with upgraded hosts: `status` warns that the
    dir holds traces of a run without its journal (text and the json `warnings` list), and
    `run` refuses (exit 2) rather than start a second upgrade over the half-upgraded
    world, changing nothing.  The world went with the journal (run.log tells), or, in
    the previous layout, stayed in world.sqlite (which tells)."""
    state_dir = copy_of(paused_run, tmp_path)
    if layout == "world.sqlite apart":
        world_apart(state_dir)
    for name in ("journal.sqlite", "journal.sqlite-wal", "journal.sqlite-shm"):
        (state_dir / name).unlink(missing_ok=True)
    shown = nsxt("status", "--state-dir", state_dir)
    assert shown.returncode == 0
    assert "journal is missing" in shown.stdout
    assert "warning:" in shown.stdout and "holds traces of a run but no journal" in shown.stdout
    if layout == "world.sqlite apart":
        assert "upgraded: esx-01" in shown.stdout
    else:
        assert "run.log records a run" in shown.stdout and "esx-01" in shown.stdout
    doc = status_json(state_dir)
    assert doc["state"] == "not_started" and len(doc["warnings"]) == 1
    before = snapshot(state_dir)
    refused = nsxt("run", LAB, "--yes", "--state-dir", state_dir)
    one_line_error(refused, 2, "has no journal of a run", "second upgrade over a half-upgraded")
    assert {k: v[0] for k, v in snapshot(state_dir).items()} == \
        {k: v[0] for k, v in before.items()}
    assert not (state_dir / "journal.sqlite").exists()


def test_run_log_alone_is_a_trace_of_a_run(paused_run: Path, tmp_path: Path) -> None:
    """With the journal and the world both gone (or with an adapter that keeps no world),
    run.log's record of units done still makes `status` warn and `run` refuse."""
    state_dir = copy_of(paused_run, tmp_path)
    for path in state_dir.glob("*.sqlite*"):
        path.unlink()
    shown = nsxt("status", "--state-dir", state_dir)
    assert "holds traces of a run but no journal" in shown.stdout
    assert "run.log records a run" in shown.stdout and "units done: esx-01" in shown.stdout
    one_line_error(nsxt("run", LAB, "--yes", "--state-dir", state_dir), 2,
                   "run.log records a run")


def test_an_empty_state_dir_has_no_warnings(tmp_path: Path) -> None:
    """The warning needs evidence: an empty state dir is simply not started."""
    (tmp_path / "empty").mkdir()
    doc = status_json(tmp_path / "empty")
    assert doc["state"] == "not_started" and doc["warnings"] == []


# -- item 9: a closed stdout ------------------------------------------------------------------


def test_a_closed_stdout_does_not_stop_the_run(tmp_path: Path) -> None:
    """`run ... | head -2`: the reader goes away after two lines; the run keeps going to
    the end (exit 0, status done) and what it would have printed is in run.log."""
    state_dir = tmp_path / "state"
    with (tmp_path / "stderr").open("w") as stderr:
        proc = subprocess.Popen(command("run", LAB, "--yes", "--state-dir", state_dir,
                                        "--speed", "2000"),
                                stdout=subprocess.PIPE, stderr=stderr, stdin=subprocess.DEVNULL,
                                env=RUN_ENV)
        assert proc.stdout is not None
        first = [proc.stdout.readline(), proc.stdout.readline()]
        proc.stdout.close()
        code = proc.wait(timeout=120)
    assert all(first), first
    assert code == 0, (tmp_path / "stderr").read_text(encoding="utf-8")
    assert "Traceback" not in (tmp_path / "stderr").read_text(encoding="utf-8")
    assert status_json(state_dir)["state"] == "done"
    log = [json.loads(line) for line in
           (state_dir / "run.log").read_text(encoding="utf-8").splitlines()]
    events = [entry["event"] for entry in log]
    assert "stdout_closed" in events
    after = events[events.index("stdout_closed"):]
    assert "output" in after or "message" in after
    texts = [entry.get("text", "") for entry in log[events.index("stdout_closed"):]]
    assert any("upgrade complete: 8 units" in t for t in texts)
    assert any("postcheck" in t for t in texts)


# -- item 10: messages --------------------------------------------------------------------------


def test_an_edge_in_a_host_group_is_named_as_an_edge(tmp_path: Path) -> None:
    """A host group listing edge-01: the error says it is an edge of edge-cluster-1 in the
    inventory (not that it is missing), at its line and column."""
    books = copy_playbooks(tmp_path)
    playbook = books / LAB.name
    text = playbook.read_text(encoding="utf-8").replace(
        "  pause_after_each_group: false\n",
        "  pause_after_each_group: false\n  groups:\n    - {name: g1, hosts: [esx-01, edge-01]}\n")
    playbook.write_text(text, encoding="utf-8")
    proc = nsxt("plan", playbook)
    line = one_line_error(proc, 2, "'edge-01' in host group 'g1' is an edge",
                          "edge cluster 'edge-cluster-1'", "not a host")
    assert line.startswith(f"{playbook}:")
    assert "not in the inventory" not in line
    missing = text.replace("edge-01]", "esx-99]")
    playbook.write_text(missing, encoding="utf-8")
    assert "'esx-99' in group 'g1' is not in the inventory" in nsxt("plan", playbook).stderr


HELP = [("plan",), ("run",), ("resume",), ("pause",), ("status",), ("compat", "check"),
        ("compat", "path"), ("compat", "matrix"), ("sim", "show"), ("emulate", "nsxt"),
        ("emulate", "vcsim-spec"), ()]


@pytest.mark.parametrize("words", HELP, ids=lambda w: " ".join(w) or "top")
def test_help_does_not_cite_the_design_document(words: tuple[str, ...]) -> None:
    """Users do not have DESIGN.md: no help text sends them to a section of it."""
    result = CliRunner().invoke(cli, [*words, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "DESIGN" not in result.output and "section " not in result.output.lower()


def test_resume_help_describes_resume() -> None:
    """`resume --help`: --state-dir says how the run is found (no playbook name, which
    resume does not take); --clock says the default is the run's own clock."""
    text = CliRunner().invoke(cli, ["resume", "--help"], terminal_width=200).output
    state_dir = text[text.index("--state-dir"):text.index("--skip")]
    assert "playbook" not in state_dir.lower() and "the only run under" in state_dir
    clock = text[text.index("--clock"):text.index("--speed")]
    assert "the clock the run was started with" in clock
    assert "virtual (default" not in clock


def test_status_and_run_suggest_whole_commands(paused_run: Path, tmp_path: Path) -> None:
    """After a failed unit pauses the run, `status` and the run's own summary suggest
    commands that can be pasted as they are: each `...` is a whole command, with no
    "(or ...)" inside it, and --skip comes as its own command."""
    state_dir = copy_of(paused_run, tmp_path)
    shown = nsxt("status", "--state-dir", state_dir)
    assert "(or --skip" not in shown.stdout
    hint = next(line for line in shown.stdout.splitlines() if line.startswith("continue with"))
    commands = hint.split("`")[1::2]
    assert commands == [f"nsxt-upgrade resume --state-dir {state_dir} --retry-failed",
                        f"nsxt-upgrade resume --state-dir {state_dir} --skip UNIT"]
    again = nsxt("resume", "--state-dir", state_dir)
    assert again.returncode == 3
    hint = next(line for line in again.stdout.splitlines() if line.startswith("continue with"))
    assert hint.split("`")[1::2] == commands
