"""The README's tour runs as written (issue 21 item 7).

The commands are read from the ``sh`` code blocks of the README's "A tour" section, so
the test fails as soon as the README and the commands drift apart, and each runs as a
subprocess (``nsxt-upgrade`` is ``python -m upgrade``, the same entry point), in order,
in a directory holding a private copy of ``playbooks/``: the tour's paths
(``playbooks/...``, ``.nsxt-upgrade/...``, ``lab-report.html``) resolve there as they do
from the repository root.

* The exit code each command must give is its comment's: ``# 4: ...`` or ``# exit 0
  ...``; without one, 0.
* A command whose comment says "from another terminal" runs while the command before it
  is still running (that one is started in the background and must then exit 3,
  paused, as DESIGN section 3 says).
* Skipped, and named in :data:`NEEDS_A_SERVER`: ``nsxt-upgrade fleet ...``, which needs a
  Temporal server (tests/fleet/test_fleet.py starts one); the fleet file it names is
  validated here instead, and its sites' playbooks planned.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tests.run_support import ENV, PLAYBOOKS, ROOT, command, nsxt
from upgrade.fleet.fleetfile import load_fleet

README = ROOT / "README.md"
#: commands that need a server outside the test: the fleet runs on Temporal
NEEDS_A_SERVER = ("nsxt-upgrade fleet ",)
#: a guard against a hung command, not a performance assertion
GUARD_S = 120


@dataclass(frozen=True)
class Step:
    """One line of the tour: the command's words, its comment, the exit code it promises."""

    line: str
    argv: tuple[str, ...]
    comment: str

    @property
    def expected(self) -> int:
        """``# 4: ...`` or ``# exit 0 ...`` in the comment, else 0."""
        found = re.match(r"(\d):", self.comment) or re.search(r"\bexit (\d)\b", self.comment)
        return int(found.group(1)) if found else 0

    @property
    def concurrent(self) -> bool:
        """True when the README runs it while the command before it still runs."""
        return "from another terminal" in self.comment

    @property
    def needs_a_server(self) -> bool:
        """True for commands this test cannot run without an outside server."""
        return self.line.startswith(NEEDS_A_SERVER)


def tour(readme: Path = README) -> list[Step]:
    """The commands of the README's "A tour" section, in order."""
    text = readme.read_text(encoding="utf-8")
    start = text.index("\n## A tour\n")
    end = text.index("\n## ", start + 1)
    steps = []
    for block in re.findall(r"```sh\n(.*?)```", text[start:end], flags=re.S):
        for raw in block.splitlines():
            code, _, comment = raw.partition("#")
            if not code.strip():
                continue
            steps.append(Step(code.strip(), tuple(shlex.split(code)), comment.strip()))
    return steps


def _argv(step: Step) -> list[str]:
    assert step.argv[0] == "nsxt-upgrade", step.line
    return command(*step.argv[1:])


def _run(step: Step, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(_argv(step), cwd=cwd, capture_output=True, text=True, env=ENV,
                          timeout=GUARD_S, check=False, stdin=subprocess.DEVNULL)


def _state_dir(step: Step) -> str:
    return step.argv[step.argv.index("--state-dir") + 1]


def _wait_running(state_dir: Path, background: subprocess.Popen[str]) -> None:
    """Until the background run holds its state dir and has journaled its start."""
    deadline = time.monotonic() + GUARD_S
    while time.monotonic() < deadline:
        assert background.poll() is None, "the run ended before the pause could be sent"
        status = nsxt("status", "--state-dir", state_dir, "--format", "json")
        if status.returncode == 0 and json.loads(status.stdout)["state"] == "running":
            return
        time.sleep(0.1)
    raise AssertionError(f"{state_dir} never showed a running run")


def test_the_tour_is_there_and_covers_the_main_commands() -> None:
    words = {" ".join(step.argv[1:3]) for step in tour()}
    for needed in ("plan playbooks/lab-2.1-to-2.3.yaml", "pause --state-dir",
                   "resume --state-dir", "compat matrix", "report --state-dir"):
        assert any(w.startswith(needed) for w in words), needed
    skipped = [step.line for step in tour() if step.needs_a_server]
    assert skipped == ["nsxt-upgrade fleet run playbooks/fleet.yaml"]


def test_every_command_of_the_tour_runs_as_written(tmp_path: Path) -> None:
    shutil.copytree(PLAYBOOKS, tmp_path / "playbooks")
    steps = [step for step in tour() if not step.needs_a_server]
    background: tuple[Step, subprocess.Popen[str]] | None = None
    for index, step in enumerate(steps):
        if index + 1 < len(steps) and steps[index + 1].concurrent:
            background = (step, subprocess.Popen(
                _argv(step), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL, text=True, env=ENV))
            continue
        if step.concurrent:
            assert background is not None, step.line
            _wait_running(tmp_path / _state_dir(step), background[1])
        done = _run(step, tmp_path)
        assert done.returncode == step.expected, (step.line, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr, step.line
        if "--format json" in step.line:
            json.loads(done.stdout)
        if step.concurrent and background is not None:
            started, process = background
            out, err = process.communicate(timeout=GUARD_S)
            assert process.returncode == 3, (started.line, out, err)  # paused
            assert "paused" in out, out
            background = None
    assert background is None
    assert (tmp_path / "lab-report.html").is_file()
    history = nsxt("history", "--format", "json", cwd=tmp_path)
    assert [run["state"] for run in json.loads(history.stdout)["runs"]] == ["done", "done"]


def test_the_fleet_file_of_the_tour_is_valid_and_its_sites_plan(tmp_path: Path) -> None:
    """What `fleet run` does before it reaches Temporal: read the fleet file, plan each
    site's playbook."""
    shutil.copytree(PLAYBOOKS, tmp_path / "playbooks")
    (step,) = [s for s in tour() if s.needs_a_server]
    fleet = load_fleet(tmp_path / step.argv[-1])
    assert [site.name for site in fleet.sites] == ["lab-a", "lab-b"]
    for site in fleet.sites:
        assert site.playbook.is_file()
        planned = nsxt("plan", site.playbook)
        assert planned.returncode == 0, planned.stderr
    assert len({site.state_dir for site in fleet.sites}) == len(fleet.sites)
