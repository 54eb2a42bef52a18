"""The hostile-input corpus (``tests/inputs/hostile/``) through every command that reads a file.

Each file is given to each command the way an operator (or whoever can write to
their directory) would: as the playbook, as the inventory a playbook names, as
the emulator's inventory, and as the copy of the inventory a run keeps in its
state directory.  Every (file, command) pair must exit 2 with exactly one line
on stderr, ``FILE:LINE:COL: what is wrong`` naming the file that is wrong, no
traceback and nothing on stdout.  A few pairs run as real subprocesses under an
address-space limit and a timeout: an alias bomb used to take over a minute and
a gigabyte, a recursive alias a RecursionError traceback.
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.run_support import as_earlier_version
from upgrade.cli.main import cli

HOSTILE = Path(__file__).resolve().parent / "hostile"
ROOT = Path(__file__).resolve().parents[2]
LAB = ROOT / "playbooks" / "lab-2.1-to-2.3.yaml"
#: address space for one hostile subprocess: `plan` on the lab playbook peaks at about
#: 55 MB of address space, a lab `run` at 57 MB, `plan` on 10,000 hosts at 110 MB
MEMORY_LIMIT = 512 * 2**20
#: a guard against hangs, not a performance assertion (they take well under a second)
TIMEOUT_S = 60

#: file -> (line, column, part of the message), wherever the file is read
EXPECTED: dict[str, tuple[int, int, str]] = {
    "alias-bomb.yaml": (7, 10, "refused as an alias bomb"),
    "recursive-alias.yaml": (2, 11, "alias *a is inside the node &a names"),
    "recursive-alias-mapping.yaml": (4, 12, "alias *n is inside the node &n names"),
    "undefined-alias.yaml": (2, 7, "alias *nowhere names no anchor"),
    "bidi-in-vm-id.yaml": (14, 30, "control character U+202E"),
    "escape-in-host-id.yaml": (14, 16, "control character U+001B"),
    "binary-garbage.bin": (1, 87, "NUL byte"),
    "nul-byte.yaml": (13, 20, "NUL byte"),
    "raw-escape.yaml": (13, 22, "character U+001B is not allowed"),
    "c1-control.yaml": (13, 20, "character U+009B is not allowed"),
    "latin1.yaml": (13, 33, "byte 0xe9 is not UTF-8"),
    "utf16.yaml": (1, 1, "UTF-16"),
    "deep-nesting.yaml": (2, 70, "nested more than 64 levels"),
    "deep-nesting-mapping.yaml": (66, 129, "nested more than 64 levels"),
    "long-int.yaml": (15, 7, "a number of 5000 digits is too large"),
    "duplicate-keys.yaml": (5, 3, "duplicate key 'manager'"),
    "tabs.yaml": (4, 1, "a tab cannot indent YAML"),
    "two-documents.yaml": (15, 1, "single document"),
    "mapping-as-key.yaml": (2, 3, "mapping keys must be plain words"),
    "huge-sparse.yaml": (1, 1, "more than the 16 MiB"),
    "long-key.yaml": (1, 3, "unknown key 'naaaa"),
}
#: what libyaml itself says where it stops first: builds of PyYAML whose libyaml limits the
#: nesting to 1000 levels stop there before our 64-level check has seen the 65th
LIBYAML_FIRST: dict[tuple[str, str], tuple[int, int, str]] = {
    ("deep-nesting.yaml", "1006"): (2, 1006, "nesting depth"),
}
#: inventories wrong only as inventories (as a playbook they are wrong from line 2)
EXPECTED_AS_INVENTORY: dict[str, tuple[int, int, str]] = {
    "markup-in-host-id.yaml": (14, 16, "host id '[bold red]esx-02' is not a valid id"),
    "newline-in-cluster.yaml": (10, 13, "cluster name 'cluster-a\\nfake line' is not a valid"),
    "space-only-id.yaml": (4, 12, "manager id ' ' is not a valid id"),
    "huge-int-seed.yaml": (15, 7, "seed must be at most 9223372036854775807"),
    "float-max-duration.yaml": (15, 27, "host_upgrade must be a whole number, found 1e308"),
    "inf-duration.yaml": (15, 27, "host_upgrade must be a whole number, found .inf"),
    "nan-times.yaml": (16, 52, "times must be a whole number, found .nan"),
    "negative-duration.yaml": (15, 27, "host_upgrade must be at least 0, found -5"),
}
#: made at test time: a 3 GiB file (sparse: it takes no disk) must be refused unread
GENERATED: dict[str, Callable[[Path], None]] = {
    "huge-sparse.yaml": lambda path: os.truncate(path, 3 * 2**30),
    # a 2 MB key: the message must not repeat it, nor compare it with every known key
    "long-key.yaml": lambda path: path.write_text(f"? n{'a' * 2_000_000}me\n: 1\n"),
}
FILES = sorted({p.name for p in HOSTILE.iterdir() if p.suffix in (".yaml", ".bin")}
               | set(GENERATED))


def test_the_corpus_is_all_expected() -> None:
    """Every corpus file has its expected error, and every expectation its file."""
    assert set(FILES) == set(EXPECTED) | set(EXPECTED_AS_INVENTORY)


@dataclass(frozen=True)
class Case:
    """One command reading one hostile file."""

    args: list[str]
    #: the file the error must name (the corpus file, or the copy the command reads)
    named: Path
    as_inventory: bool
    env: dict[str, str] | None = None
    #: must not exist afterwards (nothing written before the file was read)
    untouched: Path | None = None


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The state dir of a finished lab run (its inventory copy is replaced per case)."""
    state_dir = tmp_path_factory.mktemp("finished") / "state"
    result = CliRunner().invoke(cli, ["run", str(LAB), "--yes", "--state-dir", str(state_dir)])
    assert result.exit_code == 0, result.output
    return state_dir


def hostile_file(name: str, directory: Path) -> Path:
    """The corpus file ``name`` (generated ones are made in ``directory``)."""
    if name in GENERATED:
        path = directory / name
        path.write_bytes(b"")
        GENERATED[name](path)
        return path
    return HOSTILE / name


def playbook_naming(inventory: Path, directory: Path) -> Path:
    """A valid playbook in ``directory`` whose simulated inventory is ``inventory``."""
    (directory / "bundle.mub").write_bytes(b"not really a bundle")
    path = directory / "playbook.yaml"
    path.write_text(
        'name: hostile\ntarget_version: "2.3.0.0"\nbundle: {path: bundle.mub}\n'
        f'inventory: {{adapter: simulated, source: "{inventory}"}}\n'
        'compatibility: {pks: "1.2.0", opsman: "2.3.1"}\n', encoding="utf-8")
    return path


def state_dir_with(inventory: Path, finished: Path, directory: Path) -> Path:
    """A copy of the finished run's state dir whose inventory copy is ``inventory``."""
    state_dir = directory / "copied-state"
    shutil.copytree(finished, state_dir)
    copy = state_dir / "inventory.yaml"
    if inventory.name in GENERATED:  # made again in place: copying 3 GiB of holes is slow
        copy.write_bytes(b"")
        GENERATED[inventory.name](copy)
    else:
        shutil.copyfile(inventory, copy)
    return state_dir


COMMANDS = ["plan", "plan-inventory", "run", "run-inventory", "emulate-nsxt", "vcsim-spec",
            "resume", "sim-show"]


def make_case(command: str, bad: Path, tmp_path: Path, finished: Path) -> Case:
    """The arguments of ``command`` reading ``bad``."""
    state = tmp_path / "state"
    if command == "plan":
        return Case(["plan", str(bad)], bad, False)
    if command == "plan-inventory":
        return Case(["plan", str(playbook_naming(bad, tmp_path))], bad, True)
    if command == "run":
        return Case(["run", str(bad), "--yes", "--state-dir", str(state)], bad, False,
                    untouched=state)
    if command == "run-inventory":
        playbook = playbook_naming(bad, tmp_path)
        return Case(["run", str(playbook), "--yes", "--state-dir", str(state)], bad, True,
                    untouched=state)
    if command == "emulate-nsxt":
        return Case(["emulate", "nsxt", "--inventory", str(bad), "--state-dir", str(state)],
                    bad, True, env={"NSXT_USERNAME": "admin", "NSXT_PASSWORD": "secret"},
                    untouched=state)
    if command == "vcsim-spec":
        return Case(["emulate", "vcsim-spec", "--inventory", str(bad)], bad, True)
    copied = state_dir_with(bad, finished, tmp_path)
    if command == "resume":
        # a run recorded by this version keeps its inputs in the journal and never reads
        # its inventory copy again; one recorded by the previous version still reads it
        as_earlier_version(copied)
        return Case(["resume", "--state-dir", str(copied)], copied / "inventory.yaml", True)
    assert command == "sim-show"
    return Case(["sim", "show", "--state-dir", str(copied)], copied / "inventory.yaml", True)


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("name", FILES)
def test_hostile_file(name: str, command: str, tmp_path: Path, finished_run: Path) -> None:
    """Exit 2, one line naming the file with line and column, no traceback, nothing written."""
    bad = hostile_file(name, tmp_path)
    case = make_case(command, bad, tmp_path, finished_run)
    result = CliRunner().invoke(cli, case.args, env=case.env)
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert len(lines[0]) < 1000, lines[0][:1000]
    assert re.match(rf"{re.escape(str(case.named))}:\d+:\d+: ", lines[0]), lines[0]
    expected = EXPECTED.get(name) or (EXPECTED_AS_INVENTORY[name] if case.as_inventory else None)
    if expected is not None:
        line, column, fragment = LIBYAML_FIRST.get((name, lines[0].split(":")[2]), expected)
        assert lines[0].startswith(f"{case.named}:{line}:{column}: "), lines[0]
        assert fragment in lines[0], lines[0]
    assert "\x1b" not in lines[0] and "\u202e" not in lines[0]
    if case.untouched is not None:
        assert not case.untouched.exists()


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


@pytest.mark.parametrize(("name", "command"), [
    ("alias-bomb.yaml", "plan"),
    ("alias-bomb.yaml", "emulate-nsxt"),
    ("recursive-alias.yaml", "plan"),
    ("deep-nesting.yaml", "plan-inventory"),
    ("huge-sparse.yaml", "run"),
    ("binary-garbage.bin", "plan"),
])
def test_hostile_file_in_a_bounded_process(name: str, command: str, tmp_path: Path,
                                           finished_run: Path) -> None:
    """As a real process with 512 MiB of address space: the refusal fits, and in time."""
    bad = hostile_file(name, tmp_path)
    case = make_case(command, bad, tmp_path, finished_run)
    env = {**os.environ, **(case.env or {})}
    done = subprocess.run([sys.executable, "-m", "upgrade", *case.args], capture_output=True,
                          text=True, timeout=TIMEOUT_S, preexec_fn=_limit_memory, env=env,
                          cwd=tmp_path, check=False)
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert done.stderr.startswith(f"{case.named}:"), done.stderr


def test_a_healthy_run_fits_the_memory_limit(tmp_path: Path) -> None:
    """The limit the hostile processes run under does not fail a real lab run."""
    done = subprocess.run(
        [sys.executable, "-m", "upgrade", "run", str(LAB), "--yes", "--state-dir",
         str(tmp_path / "state")], capture_output=True, text=True, timeout=TIMEOUT_S,
        preexec_fn=_limit_memory, cwd=tmp_path, check=False)
    assert done.returncode == 0, done.stderr


def test_a_device_is_not_read(runner: CliRunner, tmp_path: Path) -> None:
    """`plan /dev/zero` is refused at once instead of reading forever, and so is a
    playbook whose inventory is /dev/zero."""
    result = runner.invoke(cli, ["plan", "/dev/zero"])
    assert result.exit_code == 2, result.output
    assert result.stderr == "/dev/zero:1:1: cannot read it: not a regular file (give a YAML file)\n"
    playbook = playbook_naming(Path("/dev/zero"), tmp_path)
    result = runner.invoke(cli, ["plan", str(playbook)])
    assert result.exit_code == 2, result.output
    assert result.stderr == (f"{playbook}:4:41: inventory file /dev/zero is not a regular file "
                             "(paths are relative to the playbook)\n")
