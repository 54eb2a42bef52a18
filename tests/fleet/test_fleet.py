"""``nsxt-upgrade fleet``: many sites at once on a real Temporal server (DESIGN section 8).

One ``temporal server start-dev`` serves the whole session (:mod:`tests.temporal_support`);
every test gets its own fleet name and task queue.  Workers and ``fleet run`` are real
subprocesses.  After every run, each site's simulated world (``sim show``) must show every
unit upgraded exactly once, none left in maintenance, whatever was killed on the way.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import random
import signal
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.nsxt_emulator_support import PASSWORD, USERNAME, start_emulator, write_inventory
from tests.run_support import ENV, LAB, check_world, command, copy_playbooks, edit, nsxt
from tests.temporal_support import TemporalServer
from upgrade.adapters.factory import credentials
from upgrade.cli import fleet_cmd
from upgrade.cli.main import cli
from upgrade.errors import InputError
from upgrade.inputs.inventory import load_inventory

#: simulated seconds per real second: the lab (about three simulated hours) in seconds
SPEED = 3000
RUN_TIMEOUT_S = 150.0
#: how many times the worker test kills the worker (each kill costs an activity timeout)
WORKER_KILLS = 4


# -- helpers ---------------------------------------------------------------------------------


def write_fleet(root: Path, temporal: TemporalServer, sites: list[dict[str, Any]],
                temporal_extra: dict[str, Any] | None = None, **extra: Any) -> Path:
    """A fleet file in ``root`` with a name and task queue of its own; its history_limit the
    lowest there is, so that every site takes several workflow runs (continue-as-new)."""
    tag = uuid.uuid4().hex[:8]
    doc = {"name": f"fleet-{tag}", "sites": sites, "speed": SPEED,
           "temporal": {"address": temporal.address, "task_queue": f"tq-{tag}",
                        "activity_timeout_s": 3, "history_limit": 100,
                        **(temporal_extra or {})},
           **extra}
    path = root / "fleet.yaml"
    path.write_text(json.dumps(doc, indent=2), encoding="utf-8")  # JSON is YAML
    return path


def site_dir(fleet: Path, site: str) -> Path:
    """A site's default state dir."""
    name = json.loads(fleet.read_text())["name"]
    return fleet.parent / ".nsxt-upgrade" / name / site


def world(state_dir: Path) -> dict[str, Any]:
    """``sim show --format json`` of a site."""
    shown = nsxt("sim", "show", "--state-dir", state_dir, "--format", "json")
    assert shown.returncode == 0, shown.stderr
    doc: dict[str, Any] = json.loads(shown.stdout)
    return doc


@functools.cache
def plan_of(playbook: Path) -> dict[str, Any]:
    """``plan --format json`` of ``playbook``."""
    plan = nsxt("plan", playbook, "--format", "json")
    assert plan.returncode == 0, plan.stderr
    doc: dict[str, Any] = json.loads(plan.stdout)
    return doc


def check_site(state_dir: Path, playbook: Path = LAB) -> None:
    """Every unit upgraded exactly once, none in maintenance, every safety invariant."""
    check_world(world(state_dir), plan_of(playbook), load_inventory(state_dir / "inventory.yaml"))


def assert_several_runs(temporal: TemporalServer, fleet: Path, *sites: str) -> None:
    """Each site took more than one workflow run (continue-as-new past ``history_limit``), so
    the kills met runs that started from a carried snapshot."""
    name = json.loads(fleet.read_text())["name"]
    for site in sites:
        runs = temporal.runs(f"nsxt-upgrade/{name}/{site}")
        assert len(runs) >= 2, (site, len(runs))


def fleet_cmd_run(*args: str | Path, env: dict[str, str] | None = None,
                  timeout: float = RUN_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    """``nsxt-upgrade fleet ARGS`` to completion."""
    return subprocess.run(command("fleet", *args), capture_output=True, text=True,
                          env=env or ENV, timeout=timeout, check=False)


def spawn(*args: str | Path, log: Path, env: dict[str, str] | None = None
          ) -> subprocess.Popen[str]:
    """``nsxt-upgrade fleet ARGS`` in the background, its output into ``log``."""
    with log.open("a") as out:
        return subprocess.Popen(command("fleet", *args), stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, text=True, env=env or ENV)


def lab_sites(books: Path, *names: str) -> list[dict[str, Any]]:
    """Sites running the lab playbook."""
    return [{"name": n, "playbook": str(books / LAB.name)} for n in names]


def wait_until(predicate: Callable[[], Any], timeout: float = 60.0) -> Any:
    """Poll ``predicate`` until it is truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {predicate}")


def status(fleet: Path) -> dict[str, Any]:
    """``fleet status --format json``."""
    shown = fleet_cmd_run("status", fleet, "--format", "json", timeout=60)
    assert shown.returncode == 0, shown.stderr
    doc: dict[str, Any] = json.loads(shown.stdout)
    return doc


# -- the fleet file and the optional extra (no server) -------------------------------------------


@pytest.mark.parametrize(("text", "where", "words"), [
    ("name: f\nsites: []\n", "2:8", "at least one site"),
    ("name: f\nsites:\n  - {name: a, playbook: nope.yaml}\n", "3:25", "does not exist"),
    ("name: f\nsites:\n  - {name: a, playbok: x}\n", "3:15", "did you mean 'playbook'"),
    ("name: f\nsites:\n  - {name: 'a b', playbook: p.yaml}\n", "3:12", "letters, digits"),
    ("name: f\nsites:\n  - {name: a, playbook: p.yaml}\n  - {name: a, playbook: p.yaml}\n",
     "4:12", "named twice"),
    ("name: f\nspeed: fast\nsites:\n  - {name: a, playbook: p.yaml}\n", "2:8",
     "a number from 0.001 to 1,000,000"),
    ("name: f\nspeed: .nan\nsites:\n  - {name: a, playbook: p.yaml}\n", "2:8",
     "a number from 0.001"),
    ("name: f\nspeed: .inf\nsites:\n  - {name: a, playbook: p.yaml}\n", "2:8",
     "a number from 0.001"),
    ("name: f\nsites:\n  - {name: a, playbook: p.yaml, speed: 1e-300}\n", "3:40",
     "a number from 0.001"),
    ("name: f\nsites:\n  - {name: a, playbook: sub}\n", "3:25", "is a directory"),
    ("name: f\nsites:\n  - {name: a, playbook: p.yaml, state_dir: s}\n"
     "  - {name: b, playbook: p.yaml, state_dir: s/.}\n", "4:44", "two sites may never share"),
    ("name: f\nsites:\n  - {name: a, playbook: p.yaml, state_dir: .nsxt-upgrade/f/b}\n"
     "  - {name: b, playbook: p.yaml}\n", "4:12", "two sites may never share"),
    ("name: f\nmax_parallel_sites: 0\nsites:\n  - {name: a, playbook: p.yaml}\n", "2:21",
     "at least 1"),
    ("name: f\nsites:\n  - {name: a, playbook: p.yaml}\ntemporal: {tls: {cert: p.yaml}}\n",
     "4:17", "both cert and key"),
])
def test_fleet_file_errors_name_file_line_and_column(
        tmp_path: Path, runner: CliRunner, text: str, where: str, words: str) -> None:
    """A bad fleet file: one line FILE:LINE:COL naming what is wrong, exit 2, no traceback."""
    (tmp_path / "p.yaml").write_text("name: p\n", encoding="utf-8")
    (tmp_path / "sub").mkdir()
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(text, encoding="utf-8")
    result = runner.invoke(cli, ["fleet", "run", str(fleet)])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"{fleet}:{where}: "), result.stderr
    assert words in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("kind", ["fifo", "dir", "missing"])
def test_a_fleet_file_that_is_not_a_file_is_named_as_such(
        tmp_path: Path, runner: CliRunner, kind: str) -> None:
    """A FIFO (never opened: it would hang), a directory, a missing path: each said as it is,
    exit 2, at once."""
    path = tmp_path / "fleet.yaml"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "dir":
        path.mkdir()
    result = runner.invoke(cli, ["fleet", "status", str(path)])
    assert result.exit_code == 2, result.output
    words = {"fifo": "not a regular file", "dir": "is a directory",
             "missing": "no such fleet file"}[kind]
    assert words in result.stderr and "Traceback" not in result.stderr, result.stderr


def test_an_invalid_site_playbook_stops_fleet_run_before_anything_starts(
        tmp_path: Path, runner: CliRunner) -> None:
    """`fleet run` validates every site's playbook first: FILE:LINE:COL of the playbook, exit 2
    (no Temporal needed to say so)."""
    books = copy_playbooks(tmp_path)
    bad = edit(books / LAB.name, "retries: 2", "retries: many")
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(f"name: f\nsites:\n  - {{name: a, playbook: {bad}}}\n"
                     "temporal: {address: '127.0.0.1:1'}\n", encoding="utf-8")
    result = runner.invoke(cli, ["fleet", "run", str(fleet)])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"{bad}:"), result.stderr


def test_fleet_commands_without_the_extra_say_how_to_install_it(
        tmp_path: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without temporalio every fleet command exits 2 naming `nsxt-upgrade[fleet]`."""
    monkeypatch.setattr(fleet_cmd, "have_temporal", lambda: False)
    for sub in ("run", "worker", "status", "pause", "resume"):
        result = runner.invoke(cli, ["fleet", sub, str(tmp_path / "fleet.yaml")])
        assert result.exit_code == 2, (sub, result.output)
        assert "pip install 'nsxt-upgrade[fleet]'" in result.stderr


def test_site_credentials_come_first_from_the_site_variables(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """NSXT_PASSWORD_<SITE> (upper-cased, non-alphanumerics as _) before NSXT_PASSWORD."""
    monkeypatch.setenv("NSXT_USERNAME", "admin")
    monkeypatch.setenv("NSXT_PASSWORD", "shared")
    monkeypatch.setenv("NSXT_PASSWORD_DC_BERLIN_1", "berlin")
    assert credentials("NSXT", "dc-berlin.1") == ("admin", "berlin")
    assert credentials("NSXT", "dc-paris") == ("admin", "shared")
    monkeypatch.delenv("NSXT_PASSWORD")
    with pytest.raises(InputError, match="NSXT_PASSWORD_DC_PARIS"):
        credentials("NSXT", "dc-paris")


# -- on a real Temporal server ------------------------------------------------------------------


@pytest.mark.slow
def test_three_sites_run_to_the_end_and_running_again_attaches(
        tmp_path: Path, temporal: TemporalServer, workers: Callable[..., Any]) -> None:
    """Three simulated sites to the end (exit 0); `fleet run` again attaches to the finished
    workflows and upgrades nothing twice; `fleet status` reads them from Temporal."""
    books = copy_playbooks(tmp_path)
    fleet = write_fleet(tmp_path, temporal, lab_sites(books, "dc-a", "dc-b", "dc-c"),
                        max_parallel_sites=3)
    workers(fleet)
    first = fleet_cmd_run("run", fleet)
    assert first.returncode == 0, first.stdout + first.stderr
    for name in ("dc-a", "dc-b", "dc-c"):
        assert f"{name}: started workflow" in first.stdout
        check_site(site_dir(fleet, name))
    again = fleet_cmd_run("run", fleet)
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.count("attached to workflow") == 3
    assert "started workflow" not in again.stdout
    for name in ("dc-a", "dc-b", "dc-c"):
        check_site(site_dir(fleet, name))
    doc = status(fleet)
    assert [s["name"] for s in doc["sites"]] == ["dc-a", "dc-b", "dc-c"]
    assert {s["state"] for s in doc["sites"]} == {"done"}
    assert all(s["units"]["done"] == s["units"]["total"] == 8 for s in doc["sites"])
    replay(temporal.address, fleet, [s["workflow_id"] for s in doc["sites"]])


def replay(address: str, fleet: Path, workflow_ids: list[str], min_events: int = 20) -> None:
    """Replay each stored history through the shipped workflow code in the worker's sandbox
    (with the fleet's payload codec): a workflow that is not deterministic raises here."""
    from temporalio.client import Client
    from temporalio.worker import Replayer

    from upgrade.fleet.connect import data_converter
    from upgrade.fleet.fleetfile import load_fleet
    from upgrade.fleet.worker import sandbox
    from upgrade.fleet.workflow import SiteWorkflow

    converter = data_converter(load_fleet(fleet, playbooks=False).payload_dir)

    async def go() -> None:
        client = await Client.connect(address, data_converter=converter)
        replayer = Replayer(workflows=[SiteWorkflow], workflow_runner=sandbox(),
                            data_converter=converter)
        for wid in workflow_ids:
            history = await client.get_workflow_handle(wid).fetch_history()
            assert len(history.events) > min_events
            await replayer.replay_workflow(history)

    asyncio.run(go())


@pytest.mark.slow
def test_a_worker_killed_at_random_moments_loses_nothing(
        tmp_path: Path, temporal: TemporalServer, workers: Callable[..., Any]) -> None:
    """SIGKILL the worker at random moments and start a new one each time: the fleet still ends
    done, every unit of every site upgraded exactly once."""
    books = copy_playbooks(tmp_path)
    fleet = write_fleet(tmp_path, temporal, lab_sites(books, "dc-a", "dc-b", "dc-c"))
    seed = random.randrange(1_000_000)
    rng = random.Random(seed)
    worker = workers(fleet)
    run = spawn("run", fleet, log=tmp_path / "run.log")
    kills = 0
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while run.poll() is None and kills < WORKER_KILLS:
        time.sleep(rng.uniform(0.5, 4.0))
        if run.poll() is not None:
            break
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        kills += 1
        worker = workers(fleet)
    assert run.wait(timeout=max(1.0, deadline - time.monotonic())) == 0, \
        f"seed {seed}: " + (tmp_path / "run.log").read_text()
    assert kills >= 1, f"seed {seed}: the run ended before any kill"
    print(f"seed {seed}: {kills} worker kills")
    for name in ("dc-a", "dc-b", "dc-c"):
        check_site(site_dir(fleet, name))
    assert_several_runs(temporal, fleet, "dc-a", "dc-b", "dc-c")


@pytest.mark.slow
def test_the_server_killed_and_restarted_on_its_database_loses_nothing(
        tmp_path: Path, temporal: TemporalServer, workers: Callable[..., Any]) -> None:
    """SIGKILL the Temporal server twice mid-run and restart it on the same database file: the
    worker and `fleet run` carry on; every unit upgraded exactly once."""
    books = copy_playbooks(tmp_path)
    fleet = write_fleet(tmp_path, temporal, lab_sites(books, "dc-a", "dc-b"))
    workers(fleet)
    run = spawn("run", fleet, log=tmp_path / "run.log")
    kills = 0
    for pause_s in (3.0, 4.0):
        time.sleep(pause_s)
        if run.poll() is not None:
            break
        temporal.kill()
        kills += 1
        time.sleep(1.0)
        temporal.start()
    assert run.wait(timeout=RUN_TIMEOUT_S) == 0, (tmp_path / "run.log").read_text()
    assert kills >= 1
    for name in ("dc-a", "dc-b"):
        check_site(site_dir(fleet, name))
    assert_several_runs(temporal, fleet, "dc-a", "dc-b")


@pytest.mark.slow
def test_fleet_pause_pauses_every_site_and_resume_finishes_them(
        tmp_path: Path, temporal: TemporalServer, workers: Callable[..., Any]) -> None:
    """`fleet pause` mid-run: in-flight work finishes, `fleet run` exits 3 and status says paused
    (dc-b also has a host whose first upgrade fails, under on_error: pause); `fleet resume
    --retry-failed` then `fleet run` finish both sites."""
    books = copy_playbooks(tmp_path)
    flaky = _failing_playbook(books, times=1, on_error="pause")
    fleet = write_fleet(tmp_path, temporal, [*lab_sites(books, "dc-a"),
                                             {"name": "dc-b", "playbook": str(flaky)}])
    workers(fleet)
    run = spawn("run", fleet, log=tmp_path / "run.log")
    wait_until(lambda: all(s["phase"] == "hosts" for s in status(fleet)["sites"]))
    paused = fleet_cmd_run("pause", fleet)
    assert paused.returncode == 0, paused.stderr
    assert paused.stdout.count("pause requested") == 2
    assert run.wait(timeout=RUN_TIMEOUT_S) == 3, (tmp_path / "run.log").read_text()
    doc = status(fleet)
    assert {s["state"] for s in doc["sites"]} == {"paused"}
    assert all(s["units"]["done"] < s["units"]["total"] for s in doc["sites"])
    assert not any(u["in_maintenance"] for u in world(site_dir(fleet, "dc-a"))["units"])
    # the pause may come before dc-b's failing host has started: then its one failure comes
    # after the resume and pauses dc-b again (on_error: pause), and one more retry finishes
    for attempt in range(2):
        resumed = fleet_cmd_run("resume", fleet, "--retry-failed")
        assert resumed.returncode == 0, resumed.stderr
        finished = fleet_cmd_run("run", fleet)
        if finished.returncode == 0 or attempt == 1:
            break
        assert finished.returncode == 3 and "esx-02" in finished.stdout, finished.stdout
    assert finished.returncode == 0, finished.stdout + finished.stderr
    check_site(site_dir(fleet, "dc-a"))
    units = world(site_dir(fleet, "dc-b"))["units"]
    assert all(u["version"] == "2.3.0.0" and not u["in_maintenance"] for u in units), units
    # a failed upgrade retried counts twice on its host; every other unit exactly once
    assert all(u["upgrade_count"] == 1 for u in units if u["id"] != "esx-02"), units


@pytest.mark.slow
def test_refused_and_failed_sites_follow_the_fleet_policy(
        tmp_path: Path, temporal: TemporalServer, workers: Callable[..., Any]) -> None:
    """A site refused by compat is named and never started (exit 4 alone); a failed site stops
    new sites once stop_after_failed_sites is reached (exit 1) without stopping the others."""
    books = copy_playbooks(tmp_path)
    refused = edit(_copy(books, "refused.yaml"),
                   'pks: "1.2.0"', 'pks: "1.0.0"')
    failing = _failing_playbook(books)
    sites = [{"name": "dc-old", "playbook": str(refused)},
             {"name": "dc-bad", "playbook": str(failing)},
             {"name": "dc-ok", "playbook": str(books / LAB.name)},
             {"name": "dc-later", "playbook": str(books / LAB.name)}]
    fleet = write_fleet(tmp_path, temporal, sites, max_parallel_sites=2,
                        stop_after_failed_sites=1)
    workers(fleet)
    result = fleet_cmd_run("run", fleet)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "dc-old: refused, not started" in result.stderr and "PKS 1.0.0" in result.stderr
    assert "dc-later: not started: 1 site(s) failed" in result.stdout
    assert not site_dir(fleet, "dc-old").exists() and not site_dir(fleet, "dc-later").exists()
    check_site(site_dir(fleet, "dc-ok"))  # the failure did not stop the site beside it
    states = {s["name"]: s["state"] for s in status(fleet)["sites"]}
    assert states == {"dc-old": "not_started", "dc-bad": "failed", "dc-ok": "done",
                      "dc-later": "not_started"}
    bad = {u["id"]: u for u in world(site_dir(fleet, "dc-bad"))["units"]}
    # the failed host stays where it failed (in maintenance, for an operator); no other does
    assert {u for u, s in bad.items() if s["in_maintenance"]} <= {"esx-02"}
    assert all(u["upgrade_count"] <= 1 for u in bad.values())


def _copy(books: Path, name: str) -> Path:
    target = books / name
    target.write_text((books / LAB.name).read_text(), encoding="utf-8")
    return target


def _failing_playbook(books: Path, times: int = 1, on_error: str = "abort") -> Path:
    """The lab, where the first ``times`` upgrades of esx-02 fail."""
    inventory = books / f"failing-{on_error}-inventory.yaml"
    inventory.write_text((books / "lab-inventory.yaml").read_text() + "faults:\n  - {unit: "
                         f"esx-02, op: upgrade, kind: fail, times: {times}}}\n", encoding="utf-8")
    playbook = _copy(books, f"failing-{on_error}.yaml")
    edit(playbook, "source: lab-inventory.yaml", f"source: {inventory.name}")
    return edit(playbook, "on_error: pause", f"on_error: {on_error}")


@pytest.mark.slow
def test_a_site_on_the_nsxt_emulator_through_the_nsxt_adapter(
        tmp_path: Path, temporal: TemporalServer, workers: Callable[..., Any]) -> None:
    """One site against the NSX-T upgrade-API emulator (a real HTTP server) through the nsxt
    adapter, its password from NSXT_PASSWORD_<SITE>: every unit upgraded once."""
    speed = 600
    emulator_dir = tmp_path / "emulator"
    emulator = start_emulator(write_inventory(tmp_path), emulator_dir, speed=speed)
    try:
        books = copy_playbooks(tmp_path)
        playbook = books / "site.yaml"
        playbook.write_text(
            "name: emulated\ntarget_version: \"2.3.0.0\"\n"
            "bundle: {path: bundles/VMware-NSX-upgrade-bundle-2.3.0.0.0.10085361.mub}\n"
            f"inventory: {{adapter: nsxt, manager: \"{emulator.url}\"}}\n"
            "prechecks: {acknowledge: [edge-01-uplink-fp-eth1-is-down]}\n", encoding="utf-8")
        site = {"name": "dc-lab.1", "playbook": str(playbook), "speed": speed}
        fleet = write_fleet(tmp_path, temporal, [site])
        env = {**ENV, "NSXT_USERNAME": USERNAME, "NSXT_PASSWORD": "wrong",
               "NSXT_PASSWORD_DC_LAB_1": PASSWORD}
        workers(fleet, env=env)
        result = fleet_cmd_run("run", fleet, env=env)
        assert result.returncode == 0, result.stdout + result.stderr
        snapshot = world(emulator_dir)
        assert snapshot["units"]
        for unit in snapshot["units"]:
            assert unit["version"] == "2.3.0.0", unit
            assert unit["upgrade_count"] == 1, unit
            assert not unit["in_maintenance"], unit
        assert PASSWORD not in result.stdout + result.stderr
        history = subprocess.run(
            [str(temporal.binary), "workflow", "show", "--address", temporal.address,
             "--workflow-id", f"nsxt-upgrade/{json.loads(fleet.read_text())['name']}/dc-lab.1",
             "--output", "json"], capture_output=True, text=True, timeout=60, check=True)
        assert "ACTIVITY_TASK_COMPLETED" in history.stdout
        assert PASSWORD not in history.stdout  # credentials never reach workflow history
    finally:
        emulator.stop()


@pytest.mark.slow
def test_a_worker_stops_on_sigterm(
        tmp_path: Path, temporal: TemporalServer, workers: Callable[..., Any]) -> None:
    """SIGTERM stops a worker gracefully: it says so and exits 0."""
    books = copy_playbooks(tmp_path)
    fleet = write_fleet(tmp_path, temporal, lab_sites(books, "dc-a"))
    worker = workers(fleet)
    wait_until(lambda: "worker polling" in (tmp_path / "worker.log").read_text())
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0
    assert "worker stopped" in (tmp_path / "worker.log").read_text()
