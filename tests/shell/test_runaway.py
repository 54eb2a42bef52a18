"""A hung unit with a huge timeout must not run away (issue 9 item 2), tried as it was found:
the real CLI in subprocesses, real signals, `kill -9`, the simulated world and the NSX-T
emulator behind it.

The reproduction: the lab with the inventory fault ``{unit: esx-01, op: upgrade, kind:
hang}`` and ``timeouts: {host_upgrade: N}``.  Before the fix, on the virtual clock, ``run``
spun at 100% CPU writing ~2 MB/s of journal, ignored SIGINT and SIGTERM, and ``status``
took 46 s afterwards.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.nsxt_emulator_support import (
    INVENTORY,
    PASSWORD,
    USERNAME,
    Emulator,
    start_emulator,
    write_inventory,
)
from tests.run_support import (
    BUNDLE,
    ENV,
    command,
    copy_playbooks,
    edit,
    journal_records,
    nsxt,
    peek_phase,
    spawn,
    world,
)
from upgrade.shell.drive import GROUP_ENV
from upgrade.sim.store import load_snapshot

WEEK = 7 * 24 * 3600
HANG = "faults:\n  - {unit: esx-01, op: upgrade, kind: hang}\n"
#: how long a stopped runner may take to exit: generous, a guard against hangs, not a bar
EXIT_BOUND_S = 10.0


def hang_lab(tmp_path: Path, timeout: int, extra_inventory: str = HANG) -> Path:
    """The lab playbook (a private copy) with the hang fault and ``host_upgrade: timeout``."""
    books = copy_playbooks(tmp_path / str(timeout))
    inventory = books / "lab-inventory.yaml"
    inventory.write_text(inventory.read_text() + extra_inventory)
    playbook = books / "lab-2.1-to-2.3.yaml"
    playbook.write_text(playbook.read_text() + f"timeouts: {{host_upgrade: {timeout}}}\n")
    return playbook


def records_of(state_dir: Path, kind: str, unit: str | None = None,
               op: str | None = None) -> list[dict[str, Any]]:
    """The journal's records of payload type ``kind`` (for ``unit``, ``op``), with ``at``."""
    return [{"at": at, **p} for _, at, p in journal_records(state_dir)
            if p["type"] == kind and (unit is None or p.get("unit") == unit)
            and (op is None or p.get("op") == op)]


def upgrade_polled(state_dir: Path) -> list[dict[str, Any]]:
    """The journaled answers to polls of esx-01's upgrade (none before the journal exists)."""
    if not (state_dir / "journal.sqlite").is_file():
        return []
    return records_of(state_dir, "Polled", "esx-01", "upgrade")


def status(state_dir: Path) -> dict[str, Any]:
    """`status --format json`."""
    proc = nsxt("status", "--state-dir", state_dir, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    doc: dict[str, Any] = json.loads(proc.stdout)
    return doc


def units(state_dir: Path) -> dict[str, dict[str, Any]]:
    """The simulated world's units by id."""
    return {u["id"]: u for u in world(state_dir)["units"]}


# -- (b) the journal grows with what happens, not with how long it is watched --------------


def test_a_week_long_hang_ends_quickly_with_a_short_journal(tmp_path: Path) -> None:
    """The reproduction with the longest timeout allowed (7 days) on the virtual clock ends
    by itself in moments: the unit times out, the run pauses (exit 3) saying what to do, and
    its journal holds exactly as many records as with a one-hour timeout.  `status` reads
    it; `resume --retry-failed` starts the stuck upgrade again and finishes."""
    counts = {}
    for timeout in (3600, WEEK):
        state_dir = tmp_path / f"state-{timeout}"
        proc = nsxt("run", hang_lab(tmp_path, timeout), "--yes", "--state-dir", state_dir,
                    timeout=120)
        assert proc.returncode == 3, proc.stdout + proc.stderr
        assert f"esx-01 failed: upgrade timed out after {timeout}s" in proc.stdout
        assert "check esx-01" in proc.stdout and "--retry-failed" in proc.stdout
        counts[timeout] = len(journal_records(state_dir))
        assert [p["state"] for p in upgrade_polled(state_dir)] == ["running", "running"]
    assert counts[3600] == counts[WEEK] < 100, counts

    state_dir = tmp_path / f"state-{WEEK}"
    doc = status(state_dir)
    assert doc["state"] == "paused" and doc["units"]["failed"] == ["esx-01"]
    done = nsxt("resume", "--state-dir", state_dir, "--retry-failed", timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert all(u["version"] == "2.3.0.0" for u in units(state_dir).values())


# -- (c) bounds ------------------------------------------------------------------------------


@pytest.mark.parametrize("command_", ["plan", "run"])
@pytest.mark.parametrize(("where", "old", "new", "message"), [
    ("lab-2.1-to-2.3.yaml", "retries: 2\n", "retries: 2\ntimeouts: {host_upgrade: 100000000}\n",
     "timeouts.host_upgrade must be at most 604800 seconds (7 days), found 100000000"),
    ("lab-2.1-to-2.3.yaml", "retries: 2\n", "retries: 2\ntimeouts: {maintenance: 604801}\n",
     "timeouts.maintenance must be at most 604800 seconds (7 days), found 604801"),
    ("lab-2.1-to-2.3.yaml", "retries: 2\n", "retries: 2\ntimeouts: {host_upgrade: 0}\n",
     "timeouts.host_upgrade must be at least 1, found 0"),
    ("lab-2.1-to-2.3.yaml", "retries: 2\n", "retries: 2\ntimeouts: {host_upgrade: .nan}\n",
     "timeouts.host_upgrade must be a whole number, found .nan"),
    ("lab-inventory.yaml", "host_upgrade: 900", "host_upgrade: 1e308",
     "durations.host_upgrade must be a whole number, found 1e308"),
    ("lab-inventory.yaml", "vmotion: 30", "vmotion: 999999999",
     "durations.vmotion must be at most 604800 seconds (7 days), found 999999999"),
    ("lab-inventory.yaml", "vmotion: 30", "vmotion: -1",
     "durations.vmotion must be at least 0, found -1"),
])
def test_timeouts_and_durations_are_bounded(tmp_path: Path, command_: str, where: str,
                                            old: str, new: str, message: str) -> None:
    """A timeout or duration above 7 days (604800 s), or one that means nothing (a timeout
    of 0, a negative duration, NaN, a float), is refused on loading: one line
    FILE:LINE:COL naming the key and the bound, exit 2, nothing written."""
    books = copy_playbooks(tmp_path)
    path = edit(books / where, old, new)
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1)
                if new.strip().splitlines()[-1].split(":")[0].strip() in text
                and new.split(":")[-1].strip(" }\n") in text)
    args: list[str | Path] = [command_, books / "lab-2.1-to-2.3.yaml"]
    if command_ == "run":
        args += ["--yes", "--state-dir", tmp_path / "state"]
    proc = nsxt(*args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.startswith(f"{path}:{line}:"), proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "state").exists()


def test_the_bound_itself_is_accepted(tmp_path: Path) -> None:
    """Exactly 7 days is a valid timeout and duration."""
    books = copy_playbooks(tmp_path)
    edit(books / "lab-2.1-to-2.3.yaml", "retries: 2\n",
         f"retries: 2\ntimeouts: {{host_upgrade: {WEEK}}}\n")
    edit(books / "lab-inventory.yaml", "vmotion: 30", f"vmotion: {WEEK}")
    proc = nsxt("plan", books / "lab-2.1-to-2.3.yaml", "--format", "json")
    assert proc.returncode == 0, proc.stderr


# -- (a) signals and pause, whatever the engine is doing -------------------------------------


def busy_site(directory: Path, clusters: int = 6, hosts: int = 50, hung: int = 1,
              hung_clusters: int = 1) -> Path:
    """A site big enough that its virtual-clock run takes seconds, with the hang reproduced
    on the first ``hung`` hosts of its first ``hung_clusters`` clusters (7-day timeout):
    the playbook."""
    directory.mkdir(parents=True)
    lines = ['nsx: {version: "2.1.0.0", manager: nsx-mgr-01, controllers: [ctrl-01],',
             '      edge_clusters: [{name: ec-1, edges: [edge-01, edge-02]}]}',
             'compute:', '  clusters:']
    for c in range(clusters):
        lines += [f'    - name: cl-{c}', '      drs: fully_automated', '      hosts:']
        lines += [f'        - {{id: h-{c}-{h:02d}, vms: [vm-{c}-{h:02d}]}}' for h in range(hosts)]
    lines += ['faults:'] + [f'  - {{unit: h-{c}-{h:02d}, op: upgrade, kind: hang}}'
                            for c in range(hung_clusters) for h in range(hung)]
    (directory / "inventory.yaml").write_text("\n".join(lines) + "\n")
    playbook = directory / "busy.yaml"
    playbook.write_text(
        f'name: busy\ntarget_version: "2.3.0.0"\nbundle: {{path: {BUNDLE}}}\n'
        'inventory: {adapter: simulated, source: inventory.yaml}\n'
        'hosts: {mode: parallel, max_parallel: 5, max_parallel_groups: 5}\n'
        f'timeouts: {{host_upgrade: {WEEK}}}\n')
    return playbook


def wait_until(predicate: Any, timeout: float = 60.0, what: str = "") -> None:
    """Poll ``predicate()`` every 10 ms until true."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what or predicate}"
        time.sleep(0.01)


@pytest.fixture
def runners() -> Iterator[list[subprocess.Popen[str]]]:
    """Background runners, killed if a test leaves one behind."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=30)


@pytest.mark.slow
@pytest.mark.parametrize("how", ["SIGINT", "SIGTERM", "pause"])
def test_a_busy_virtual_run_pauses_at_once(tmp_path: Path, how: str,
                                           runners: list[subprocess.Popen[str]]) -> None:
    """A virtual-clock run never waits, yet SIGINT, SIGTERM or `pause` in the middle of its
    hosts phase (a unit hanging meanwhile) is taken in at once: the run pauses at the next
    safe point and exits 3 within a few seconds (the measured latency is printed), the
    journal records who asked; `resume --retry-failed` finishes the upgrade.

    The `pause` command's own start-up takes about a second: for it, the run commits each
    batch alone (as every adapter but the simulated one does), which keeps it busy long
    enough; a grouped run (the default here) would be done first.  SIGINT and SIGTERM
    test the same pause of a grouped run."""
    playbook = busy_site(tmp_path / "site")
    state_dir = tmp_path / "state"
    argv = command("run", playbook, "--yes", "--state-dir", state_dir)
    runner = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True,
                              env={**ENV, GROUP_ENV: "0"} if how == "pause" else ENV)
    runners.append(runner)
    wait_until(lambda: peek_phase(state_dir) == "hosts" or runner.poll() is not None,
               what="the hosts phase")
    asked = time.monotonic()
    if how == "pause":
        reply = nsxt("pause", "--state-dir", state_dir)
        assert reply.returncode == 0, reply.stderr
    else:
        runner.send_signal(getattr(signal, how))
    out, err = runner.communicate(timeout=60)
    latency = time.monotonic() - asked
    print(f"{how}: the runner exited {latency:.2f}s after it was asked to pause")
    assert runner.returncode == 3, out + err
    assert latency < EXIT_BOUND_S, latency
    assert "Traceback" not in err
    reasons = [r["reason"] for r in records_of(state_dir, "PauseRequested")]
    expected = "pause requested by an operator" if how == "pause" else f"{how} received"
    assert len(reasons) == 1 and expected in reasons[0], reasons
    doc = status(state_dir)
    assert doc["state"] == "paused" and doc["units"]["in_progress"] == []
    assert doc["units"]["done"] < doc["units"]["total"]

    done = nsxt("resume", "--state-dir", state_dir, "--retry-failed", timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    assert status(state_dir)["state"] == "done"


@pytest.mark.slow
def test_a_second_sigint_stops_a_busy_virtual_run_at_once(
        tmp_path: Path, runners: list[subprocess.Popen[str]]) -> None:
    """The second SIGINT to a busy virtual-clock run (while it drains for the first) stops
    it at once, exit 3, between two journaled steps; `resume` follows the hung unit to its
    timeout, and `resume --retry-failed` finishes.  Five hosts hang in each of the five
    clusters upgraded at once (25, every host in flight), so that the drain (a week of
    polls each, ~1 s of wall time on a quiet machine) outlasts the test's wait for the
    journal (~0.15 s) however fast the engine; with five hung hosts it drained in ~0.25 s
    and a busy machine's test saw the pause request too late once."""
    playbook = busy_site(tmp_path / "site", hung=5, hung_clusters=5)
    state_dir = tmp_path / "state"
    runner = spawn("run", playbook, "--yes", "--state-dir", state_dir)
    runners.append(runner)
    wait_until(lambda: peek_phase(state_dir) == "hosts" or runner.poll() is not None,
               what="the hosts phase")
    runner.send_signal(signal.SIGINT)
    wait_until(lambda: records_of(state_dir, "PauseRequested"), timeout=EXIT_BOUND_S,
               what="the pause request in the journal")
    asked = time.monotonic()
    runner.send_signal(signal.SIGINT)
    out, err = runner.communicate(timeout=60)
    print(f"second SIGINT: the runner exited {time.monotonic() - asked:.2f}s later")
    assert runner.returncode == 3, out + err
    assert "stopped at once" in out and "Traceback" not in err
    assert status(state_dir)["interrupted"] is True
    # the hung unit had not timed out yet: resume follows it (no second start) until it does
    again = nsxt("resume", "--state-dir", state_dir, timeout=180)
    assert again.returncode == 3, again.stdout + again.stderr
    assert "h-0-00 failed: upgrade timed out after 604800s" in again.stdout
    assert units(state_dir)["h-0-00"]["upgrade_count"] == 1
    done = nsxt("resume", "--state-dir", state_dir, "--retry-failed", timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    assert status(state_dir)["state"] == "done"


@pytest.mark.slow
def test_sigint_during_a_real_clock_hang(tmp_path: Path,
                                         runners: list[subprocess.Popen[str]]) -> None:
    """On the real clock, SIGINT while a unit hangs is journaled within a second; the run
    stops starting anything, waits for the hung unit only until its deadline, exits 3, and
    `resume --retry-failed` finishes."""
    state_dir = tmp_path / "state"
    runner = spawn("run", hang_lab(tmp_path, 1800), "--yes", "--state-dir", state_dir,
                   "--clock", "real", "--speed", "600")
    runners.append(runner)
    wait_until(lambda: upgrade_polled(state_dir), what="esx-01's upgrade polled")
    asked = time.monotonic()
    runner.send_signal(signal.SIGINT)
    wait_until(lambda: records_of(state_dir, "PauseRequested"), timeout=EXIT_BOUND_S,
               what="the pause request in the journal")
    taken = time.monotonic() - asked
    out, err = runner.communicate(timeout=60)
    ended = time.monotonic() - asked
    print(f"SIGINT journaled after {taken:.2f}s; the runner exited after {ended:.2f}s")
    assert taken < EXIT_BOUND_S and ended < EXIT_BOUND_S
    assert runner.returncode == 3, out + err
    assert "esx-01 failed: upgrade timed out after 1800s" in out
    done = nsxt("resume", "--state-dir", state_dir, "--retry-failed", "--clock", "virtual",
                timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


# -- crash safety: kill -9 in a quiet stretch ------------------------------------------------


@pytest.mark.slow
def test_kill_during_a_quiet_stretch_resumes_polling_to_the_same_deadline(
        tmp_path: Path, runners: list[subprocess.Popen[str]]) -> None:
    """`kill -9` while a hung unit is being watched (its quiet polls not journaled):
    `resume` polls it again at once, keeps the deadline its start gave it (the resumed run
    times it out at start + timeout, not later), never starts it a second time, and
    journals nothing for the polls in between."""
    state_dir = tmp_path / "state"
    clock = ["--clock", "real", "--speed", "600"]
    runner = spawn("run", hang_lab(tmp_path, 3600), "--yes", "--state-dir", state_dir, *clock)
    runners.append(runner)
    wait_until(lambda: upgrade_polled(state_dir), what="esx-01's upgrade polled")
    time.sleep(1.0)  # ten minutes of simulated watching: twenty quiet polls
    runner.kill()
    runner.communicate(timeout=30)
    assert len(upgrade_polled(state_dir)) == 1

    resumed = nsxt("resume", "--state-dir", state_dir, *clock, timeout=60)
    assert resumed.returncode == 3, resumed.stdout + resumed.stderr
    assert "esx-01 failed: upgrade timed out after 3600s" in resumed.stdout
    started = records_of(state_dir, "Started", "esx-01", "upgrade")
    polled = upgrade_polled(state_dir)
    assert len(started) == 1 and len(polled) == 2, (started, polled)
    assert 3600 <= polled[-1]["at"] - started[0]["at"] < 3600 + 60, (started, polled)
    assert units(state_dir)["esx-01"]["upgrade_count"] == 1
    assert len(records_of(state_dir, "Start", "esx-01", "upgrade")) == 1


# -- (d) the nsxt adapter and a unit stuck in the manager ------------------------------------


def emulator_playbook(directory: Path, emulator: Emulator, timeout: int) -> Path:
    """A playbook for the nsxt adapter against ``emulator`` (no vCenter)."""
    assert emulator.cert is not None
    path = directory / "against-emulator.yaml"
    path.write_text(
        'name: against-emulator\ntarget_version: "2.3.0.0"\n'
        f'bundle: {{path: {BUNDLE}}}\n'
        f'inventory: {{adapter: nsxt, manager: "{emulator.url}", ca_bundle: {emulator.cert}}}\n'
        'prechecks: {acknowledge: [edge-01-uplink-fp-eth1-is-down]}\n'
        'hosts: {mode: serial, upgrade_mode: in_place}\n'
        f'timeouts: {{host_upgrade: {timeout}}}\n')
    return path


def emulator_run(directory: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    """``nsxt-upgrade ARGS`` with the emulator's credentials, on its clock."""
    env = {**ENV, "NSXT_USERNAME": USERNAME, "NSXT_PASSWORD": PASSWORD}
    return subprocess.run(command(*args, "--clock", "real", "--speed", "600"), cwd=directory,
                          capture_output=True, text=True, env=env, timeout=120,
                          stdin=subprocess.DEVNULL, check=False)


def upgrade_count(emulator: Emulator, unit: str) -> int:
    """How often the emulator started an upgrade of ``unit``."""
    snapshot = load_snapshot(emulator.state_dir)
    return int(next(u["upgrade_count"] for u in snapshot["units"] if u["id"] == unit))


@pytest.mark.slow
def test_nsxt_unit_stuck_in_progress_is_failed_and_followed_not_restarted(
        tmp_path: Path) -> None:
    """A host the manager keeps reporting IN_PROGRESS past its deadline: NSX-T 2.x has no
    call that aborts or restarts one unit (``plan?action=pause`` waits for the units in
    progress), so the run fails it (exit 3 under on_error: pause) telling the operator to
    check it and `resume --retry-failed`; that resume follows it again with a fresh
    deadline and never asks the manager to upgrade it a second time."""
    inventory = write_inventory(tmp_path, INVENTORY, HANG)
    emulator = start_emulator(inventory, tmp_path / "emulator", speed=600, tls=True)
    try:
        playbook = emulator_playbook(tmp_path, emulator, 600)
        state_dir = tmp_path / "run"
        proc = emulator_run(tmp_path, "run", playbook, "--yes", "--state-dir", state_dir)
        assert proc.returncode == 3, proc.stdout + proc.stderr
        assert "esx-01 failed: upgrade timed out after 600s; last seen: esx-01 upgrading" \
            in proc.stdout
        assert "check esx-01" in proc.stdout and "--retry-failed" in proc.stdout
        assert upgrade_count(emulator, "esx-01") == 1
        assert len(upgrade_polled(state_dir)) <= 3

        again = emulator_run(tmp_path, "resume", "--state-dir", state_dir, "--retry-failed")
        assert again.returncode == 3, again.stdout + again.stderr
        assert "esx-01 failed: upgrade timed out after 600s" in again.stdout
        assert "nsxt.upgrade_still_in_progress" in again.stderr
        assert "cannot restart an upgrade unit in progress" in again.stderr
        assert upgrade_count(emulator, "esx-01") == 1
    finally:
        emulator.stop()


@pytest.mark.slow
def test_nsxt_unit_reported_failed_is_restarted_by_retry_failed(tmp_path: Path) -> None:
    """A host the manager reports FAILED is what the API can restart: `resume
    --retry-failed` selects it again (``plan?action=upgrade_selected_units``) and the
    upgrade finishes, the failed attempt and the retry being its only two upgrades."""
    fail = "faults:\n  - {unit: esx-01, op: upgrade, kind: fail}\n"
    inventory = write_inventory(tmp_path, INVENTORY, fail)
    emulator = start_emulator(inventory, tmp_path / "emulator", speed=600, tls=True)
    try:
        playbook = emulator_playbook(tmp_path, emulator, 600)
        state_dir = tmp_path / "run"
        proc = emulator_run(tmp_path, "run", playbook, "--yes", "--state-dir", state_dir)
        assert proc.returncode == 3, proc.stdout + proc.stderr
        assert "esx-01 failed: upgrading esx-01 failed" in proc.stdout
        assert upgrade_count(emulator, "esx-01") == 1
        done = emulator_run(tmp_path, "resume", "--state-dir", state_dir, "--retry-failed")
        assert done.returncode == 0, done.stdout + done.stderr
        assert upgrade_count(emulator, "esx-01") == 2
        snapshot = load_snapshot(emulator.state_dir)
        assert all(u["version"] == "2.3.0.0" for u in snapshot["units"])
    finally:
        emulator.stop()
