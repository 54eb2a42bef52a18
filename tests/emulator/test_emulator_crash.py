"""A killed emulator continues where it was: its simulated clock never rewinds.

Found as: ``kill -9`` during a bundle upload, restart on the same state dir, and
the upload went from 71.7% back to 0.3% (the clock was only stored with the
last change).  The emulator's help promises it "continues where it stopped".
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.emulator.test_emulator import UP, ok, snapshot, units
from tests.nsxt_emulator_support import (
    INVENTORY,
    Emulator,
    start_emulator,
    wait_for,
    write_inventory,
)

#: uploads and host upgrades long enough to kill the emulator in the middle of them
SLOW = INVENTORY.replace("bundle_upload: 120", "bundle_upload: 600").replace(
    "host_upgrade: 60", "host_upgrade: 600")
SPEED = 200


def upload_status(client: httpx.Client) -> dict[str, Any]:
    body: dict[str, Any] = ok(client.get(f"{UP}/bundles/latest/upload-status"))
    return body


def unit_status(client: httpx.Client, name: str) -> dict[str, Any]:
    group = units(client)[name]["group"]["id"]
    statuses = ok(client.get(f"{UP}/upgrade-unit-groups/{group}/status"))
    found: dict[str, Any] = next(u for u in statuses["results"] if u["display_name"] == name)
    return found


def crash(emulator: Emulator) -> None:
    assert emulator.stop(signal.SIGKILL) == -signal.SIGKILL


@pytest.mark.slow
def test_killed_mid_upload_and_mid_upgrade_continues_where_it_was(tmp_path: Path) -> None:
    """Progress seen before a kill -9 is never lost: the upload and the unit go on from it."""
    inventory = write_inventory(tmp_path, SLOW)
    state = tmp_path / "state"
    emu = start_emulator(inventory, state, speed=SPEED)
    try:
        with emu.client() as client:
            ok(client.post(f"{UP}/bundles", json={"url": "http://repo.example/nsx.mub"}))
            seen = wait_for(lambda: (s := upload_status(client))["status"] == "UPLOADING"
                            and s["percent"] > 30 and s)
    finally:
        crash(emu)

    emu = start_emulator(inventory, state, speed=SPEED)
    try:
        with emu.client() as client:
            again = upload_status(client)
            assert again["status"] in ("UPLOADING", "VERIFYING", "SUCCESS"), again
            assert again["percent"] >= seen["percent"], (seen, again)
            wait_for(lambda: upload_status(client)["status"] == "SUCCESS")
            ok(client.post(f"{UP}/eula/accept"))
            ok(client.post(UP, params={"action": "upgrade_uc"}))
            wait_for(lambda: ok(client.get(f"{UP}/summary"))["upgrade_coordinator_updated"])
            esx = units(client)["esx-02"]["id"]
            ok(client.post(f"{UP}/plan", params={"action": "upgrade_selected_units"},
                           json={"list": [{"id": esx}]}))
            midway = wait_for(lambda: (s := unit_status(client, "esx-02"))["status"] ==
                              "IN_PROGRESS" and s["percent_complete"] > 30 and s)
    finally:
        crash(emu)

    emu = start_emulator(inventory, state, speed=SPEED)
    try:
        with emu.client() as client:
            after = unit_status(client, "esx-02")
            assert after["status"] in ("IN_PROGRESS", "SUCCESS"), after
            assert after["percent_complete"] >= midway["percent_complete"], (midway, after)
            wait_for(lambda: units(client)["esx-02"]["current_version"] == "2.3.0.0")
    finally:
        emu.stop()
    world = snapshot(state)
    counts = {u["id"]: u["upgrade_count"] for u in world["units"]}
    assert counts["esx-02"] == 1 and sum(counts.values()) == 1
    assert [o["attempt"] for o in world["operations"] if o["op"] == "upload"] == [1]
    assert "Traceback" not in emu.log.read_text()
