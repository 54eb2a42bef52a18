"""Issue 12, rows "full virtual run" and "peak RSS": the run against its durable-commit floor.

``now`` is a full ``run`` on the virtual clock (a subprocess, start-up included);
``floor`` is one durable commit (SQLite WAL, synchronous=FULL) per unit per lifecycle
step, 6 x units commits, measured in the same process run. Bars: ratio <= 1.0x (goal
<= 0.5x, issue 23), peak RSS <= 200 MB. ``--growth`` adds the 1,000 vs 10,000-host run
times (linear: <= 12x).

    python benchmarks/bench_run_ratio.py                 # 10,000 hosts
    python benchmarks/bench_run_ratio.py --hosts 1000    # quicker
    python benchmarks/bench_run_ratio.py --growth        # plus the growth check
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import commit_floor, nsxt, report, site, units_of

#: lifecycle steps of a unit the floor counts one commit for
STEPS = 6
#: the row's bar and goal (issue 23: one durable commit per batch)
BAR, GOAL = 1.0, 0.5


def run_once(directory: Path, hosts: int) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of a full virtual run of the ``hosts`` site."""
    directory.mkdir()
    playbook = site(directory, hosts)
    return nsxt("run", playbook, "--yes", "--state-dir", directory / "state")


def main() -> None:
    """Print now, floor and ratio for the run, its peak RSS, and optionally the growth."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hosts", type=int, default=10_000)
    parser.add_argument("--growth", action="store_true",
                        help="also time a 1,000-host run and print the growth ratio")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        work = Path(tmp)
        now, rss = run_once(work / "big", options.hosts)
        units = units_of(options.hosts)
        floor = commit_floor(work, STEPS * units)
        print(f"site: {options.hosts} hosts, {units} units; floor = {STEPS} x {units} commits")
        report("full virtual run", now, floor, BAR)
        verdict = "meets" if now / floor <= GOAL else "misses"
        print(f"full virtual run: goal <= {GOAL:g}x: {verdict}")
        verdict = "meets" if rss <= 200 else "MISSES"
        print(f"peak RSS of the run: {rss:.0f} MiB (bar <= 200 MB: {verdict})")
        if options.growth:
            small, _ = run_once(work / "small", options.hosts // 10)
            ratio = now / small
            verdict = "meets" if ratio <= 12 else "MISSES"
            print(f"growth: {options.hosts // 10} hosts {small:.2f} s, {options.hosts} hosts "
                  f"{now:.2f} s, ratio {ratio:.2f}x (linear: <= 12x: {verdict})")


if __name__ == "__main__":
    main()
