"""Fleet at real sizes (DESIGN section 8, "At real sizes"): short histories, a way back for
a site whose workflow was terminated, cancelled pauses, and what needs only the server.

Every fleet here sets ``history_limit`` to its minimum, so that each site's eight units
take several workflow runs (continue-as-new) and every kill or termination meets a run
that started from a carried snapshot.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.fleet.test_fleet import (
    RUN_TIMEOUT_S,
    check_site,
    fleet_cmd_run,
    lab_sites,
    site_dir,
    spawn,
    status,
    wait_until,
    write_fleet,
)
from tests.run_support import copy_playbooks
from tests.temporal_support import TemporalServer
from upgrade.fleet import client as fleet_client
from upgrade.fleet.fleetfile import load_fleet

#: the lowest history_limit a fleet file takes: several runs per lab site
LIMIT = 100


def workflow_id(fleet: Path, site: str) -> str:
    """The site's workflow id."""
    return f"nsxt-upgrade/{json.loads(fleet.read_text())['name']}/{site}"


def history_lengths(temporal: TemporalServer, wid: str) -> list[int]:
    """The number of events of each run of ``wid``."""
    lengths = []
    for run in temporal.runs(wid):
        run_id = run["execution"]["runId"]
        shown = subprocess.run(
            [str(temporal.binary), "workflow", "show", "--address", temporal.address,
             "--workflow-id", wid, "--run-id", run_id, "--output", "json"],
            capture_output=True, text=True, timeout=60, check=True)
        lengths.append(len(json.loads(shown.stdout)["events"]))
    return lengths


@pytest.mark.slow
def test_a_terminated_site_shows_why_and_fleet_resume_finishes_it_exactly_once(
        tmp_path: Path, temporal: TemporalServer, workers: Callable[..., Any]) -> None:
    """`temporal workflow terminate` mid-site: `fleet run` exits 1 naming `fleet resume`,
    `fleet status` gives Temporal's reason and the last known progress (from the site's
    journal), `fleet run` again does not restart it; `fleet resume --site` starts a new run
    from the last checkpoint: every unit upgraded exactly once, none left in maintenance,
    every run's history under the limit (plus one call's events)."""
    books = copy_playbooks(tmp_path)
    fleet = write_fleet(tmp_path, temporal, lab_sites(books, "dc-a"), speed=400,
                        temporal_extra={"history_limit": LIMIT})
    workers(fleet)
    run = spawn("run", fleet, log=tmp_path / "run.log")
    wait_until(lambda: status(fleet)["sites"][0]["units"]["done"] >= 2, timeout=90)
    wid = workflow_id(fleet, "dc-a")
    subprocess.run([str(temporal.binary), "workflow", "terminate", "--address",
                    temporal.address, "--workflow-id", wid, "--reason", "operator test"],
                   capture_output=True, text=True, timeout=60, check=True)
    assert run.wait(timeout=RUN_TIMEOUT_S) == 1, (tmp_path / "run.log").read_text()
    log = (tmp_path / "run.log").read_text()
    assert f"fleet resume {fleet} --site dc-a" in log, log
    site = status(fleet)["sites"][0]
    assert site["state"] == "terminated", site
    assert "operator test" in site["reason"], site
    assert 2 <= site["units"]["done"] < site["units"]["total"] == 8, site
    assert site["phase"] == "hosts"
    again = fleet_cmd_run("run", fleet)
    assert again.returncode == 1, again.stdout + again.stderr
    assert "not restarting it" in again.stderr and "started workflow" not in again.stdout
    resumed = fleet_cmd_run("resume", fleet, "--site", "dc-a")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "started a new run from its last checkpoint" in resumed.stdout
    finished = fleet_cmd_run("run", fleet)
    assert finished.returncode == 0, finished.stdout + finished.stderr
    check_site(site_dir(fleet, "dc-a"))
    done = status(fleet)["sites"][0]
    assert done["state"] == "done" and done["units"]["done"] == 8
    lengths = history_lengths(temporal, wid)
    assert len(lengths) >= 3, lengths  # continued as new, terminated, resumed
    assert max(lengths) < LIMIT + 40, lengths


@pytest.mark.slow
def test_resume_right_after_pause_cancels_the_pending_pause(
        tmp_path: Path, temporal: TemporalServer, workers: Callable[..., Any]) -> None:
    """`fleet pause` then `fleet resume` while no worker has passed the pause on (the worker
    was SIGKILLed): the site does not pause; `fleet run` ends 0 once a worker is back."""
    books = copy_playbooks(tmp_path)
    fleet = write_fleet(tmp_path, temporal, lab_sites(books, "dc-a"), speed=400,
                        temporal_extra={"history_limit": LIMIT})
    worker = workers(fleet)
    run = spawn("run", fleet, log=tmp_path / "run.log")
    wait_until(lambda: status(fleet)["sites"][0]["phase"] == "hosts", timeout=90)
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    assert fleet_cmd_run("pause", fleet).returncode == 0
    assert fleet_cmd_run("resume", fleet).returncode == 0
    workers(fleet)
    assert run.wait(timeout=RUN_TIMEOUT_S) == 0, (tmp_path / "run.log").read_text()
    check_site(site_dir(fleet, "dc-a"))


@pytest.mark.slow
def test_status_and_pause_need_only_the_names_and_the_server(
        tmp_path: Path, temporal: TemporalServer) -> None:
    """A site's playbook gone: `fleet status` and `fleet pause` still answer (exit 0); the
    SDK's own lines never reach stdout."""
    books = copy_playbooks(tmp_path)
    fleet = write_fleet(tmp_path, temporal, lab_sites(books, "dc-a"))
    (books / "lab-2.1-to-2.3.yaml").unlink()
    shown = fleet_cmd_run("status", fleet, "--format", "json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["sites"][0]["state"] == "not_started"
    paused = fleet_cmd_run("pause", fleet)
    assert paused.returncode == 0, paused.stderr
    assert paused.stdout == "dc-a: not started; nothing to pause\n"


def test_a_server_that_is_down_is_said_on_stderr_only(tmp_path: Path) -> None:
    """`fleet status` with nothing at the address: exit 1, one line on stderr, stdout empty
    (no SDK warning lines, no colour escapes)."""
    books = copy_playbooks(tmp_path)
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(json.dumps({"name": "f", "sites": lab_sites(books, "a"),
                                 "temporal": {"address": "127.0.0.1:1"}}), encoding="utf-8")
    result = fleet_cmd_run("status", fleet, timeout=60)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout == ""
    assert "cannot reach Temporal at 127.0.0.1:1" in result.stderr
    assert "\x1b[" not in result.stderr


# -- the client's following, without a server ---------------------------------------------------


def _fleet(tmp_path: Path, sites: int) -> Any:
    books = copy_playbooks(tmp_path)
    path = tmp_path / "fleet.yaml"
    path.write_text(json.dumps({"name": "f", "sites": lab_sites(
        books, *(f"s{i}" for i in range(sites)))}), encoding="utf-8")
    return load_fleet(path)


def test_fleet_status_asks_every_site_at_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The sites are asked concurrently, not one after another."""
    fleet = _fleet(tmp_path, 5)
    busy = {"now": 0, "most": 0}

    async def observe(client: Any, fleet: Any, site: Any) -> dict[str, Any]:
        busy["now"] += 1
        busy["most"] = max(busy["most"], busy["now"])
        await asyncio.sleep(0.05)
        busy["now"] -= 1
        return fleet_client.empty_doc("running", fleet_client.NO_WORKER)

    async def connect(*args: Any, **kwargs: Any) -> None:
        return None

    monkeypatch.setattr(fleet_client, "observe", observe)
    monkeypatch.setattr(fleet_client, "connect", connect)
    doc = asyncio.run(fleet_client.fleet_status(fleet))
    assert len(doc["sites"]) == 5
    assert busy["most"] == 5


def test_fleet_run_repeats_the_no_worker_hint(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """While no worker answers, `fleet run` says so again every HINT_EVERY_S, not once."""
    fleet = _fleet(tmp_path, 1)
    said: list[str] = []
    follower = fleet_client.Follower(fleet, said.append, said.append)
    follower.outcome.docs["s0"] = fleet_client.empty_doc("running", "started")

    async def observe(client: Any, fleet: Any, site: Any) -> dict[str, Any]:
        return fleet_client.empty_doc("running", fleet_client.NO_WORKER)

    monkeypatch.setattr(fleet_client, "observe", observe)
    monkeypatch.setattr(fleet_client, "HINT_EVERY_S", 0.0)

    async def go() -> None:
        for _ in range(3):
            await follower._refresh(None)  # type: ignore[arg-type]

    asyncio.run(go())
    assert sum(fleet_client.NO_WORKER in s for s in said) == 3, said


def test_status_on_a_fleet_sites_directory_names_the_fleet(tmp_path: Path) -> None:
    """Single-site `status` on a fleet site's state dir says what it is, not that a journal
    "is gone or was replaced"."""
    from tests.run_support import nsxt

    site = tmp_path / "site"
    site.mkdir()
    (site / "fleet-input.json").write_text("{}", encoding="utf-8")
    (site / "world.sqlite").write_bytes(b"")
    (site / "inventory.yaml").write_text("", encoding="utf-8")
    shown = nsxt("status", "--state-dir", site)
    assert shown.returncode == 0, shown.stderr
    assert "gone or was replaced" not in shown.stdout + shown.stderr
    assert "fleet site's state dir" in shown.stdout and "fleet status" in shown.stdout
