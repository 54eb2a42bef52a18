"""kill -9 anywhere in a journey, resume: nothing done twice, nothing skipped.

The journey runs on the real clock (``--speed``) so that kills land inside the NSX-T
hops as well as at the gates, while the journal is written, and while a hop starts.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.journey.support import PATH, assert_hops_exactly_once, make_lab, status
from tests.run_support import ENV, command

SPEED = "200"


def _next_command(journey_file: Path, state_dir: Path) -> list[str]:
    doc = status(journey_file, state_dir)
    if doc["state"] == "not_started":
        return command("journey", "run", journey_file, "--yes", "--state-dir", state_dir,
                       "--speed", SPEED)
    args = ["journey", "resume", journey_file, "--state-dir", state_dir]
    if doc["state"] == "waiting":
        (kind, version), = doc["waiting_for"].items()
        args += ["--confirm", f"{kind}={version}"]
    return command(*args)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [11])
def test_kill_9_at_random_points_then_resume(tmp_path: Path, seed: int) -> None:
    """Kill the journey's process with SIGKILL at random moments, over and over, then
    resume each time: the journey ends done, every unit of each NSX-T hop was upgraded
    exactly once, each gate confirmed once and each hop ended once."""
    rng = random.Random(seed)
    journey_file = make_lab(tmp_path / "lab")
    state_dir = tmp_path / "j"
    kills = 0
    mid_hop = 0
    for _ in range(80):
        if status(journey_file, state_dir)["state"] == "done":
            break
        proc = subprocess.Popen(_next_command(journey_file, state_dir), env=ENV,
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        if rng.random() < 0.85:
            try:
                proc.wait(rng.uniform(0.2, 3.0))
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
                kills += 1
        _, err = proc.communicate(timeout=120)
        assert proc.returncode in (0, 3, -signal.SIGKILL), err
        if proc.returncode == -signal.SIGKILL:
            steps = status(journey_file, state_dir)["steps"]
            mid_hop += any(s["kind"] == "nsxt" and s["state"] == "paused" for s in steps)
        time.sleep(0.01)
    assert status(journey_file, state_dir)["state"] == "done"
    assert kills >= 3 and mid_hop >= 1  # the test really interrupted the journey, and a hop
    assert_hops_exactly_once(state_dir)
    records = [json.loads(line) for line in
               (state_dir / "journey.jsonl").read_text().splitlines() if line.strip()]
    confirmed = [r["n"] for r in records if r["type"] == "confirmed"]
    gates = [n for n, (kind, _, _) in enumerate(PATH, start=1) if kind != "nsxt"]
    assert sorted(confirmed) == gates  # each gate passed once
    ended = [r["n"] for r in records if r["type"] == "step_ended" and r["code"] == 0]
    assert ended == [3, 11]
    assert len([r for r in records if r["type"] == "started"]) == 1
