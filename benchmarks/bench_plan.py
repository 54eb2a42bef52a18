"""Issue 12, row "plan --format json": the plan against parsing its inventory.

``now`` is ``plan --format json`` (a subprocess: validation and the estimate, a full
engine drive); ``floor`` is parsing the same inventory YAML with PyYAML's CSafeLoader
in this process. Bar: ratio <= 8x. Both are timed ``--rounds`` times, in turns, and the
fastest of each is kept (the machine is shared: a neighbour's burst should not decide
the ratio); each round's figures are printed too. ``--big`` adds the two rows of issue
23 item 4 (slow): the 100,000-host plan's wall time (bar <= 8 s; floor: CSafeLoader
parsing its inventory) and its peak RSS (bar <= 300 MiB; floor: the peak RSS of a
process that only parses the inventory with CSafeLoader).

    python benchmarks/bench_plan.py                 # 10,000 hosts
    python benchmarks/bench_plan.py --hosts 1000    # quicker
    python benchmarks/bench_plan.py --big           # plus 100,000 hosts
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import nsxt, report, site


def parse_floor(inventory: Path) -> float:
    """Seconds to parse ``inventory`` with ``yaml.CSafeLoader``."""
    start = time.perf_counter()
    with inventory.open("rb") as stream:
        yaml.load(stream, Loader=yaml.CSafeLoader)
    return time.perf_counter() - start


def parse_floor_rss(inventory: Path) -> float:
    """Peak RSS (MiB) of a Python process that only parses ``inventory`` with CSafeLoader."""
    code = ("import sys, yaml; yaml.load(open(sys.argv[1], 'rb'), Loader=yaml.CSafeLoader)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(inventory)])
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"parsing {inventory} failed")
    return usage.ru_maxrss / 1024


def absolute(what: str, now: float, floor: float, bar: float, unit: str) -> None:
    """Print a row whose bar is an amount, not a ratio: now, floor, ratio and the bar."""
    verdict = "meets" if now <= bar else "MISSES"
    print(f"{what}: now {now:.2f} {unit}, floor {floor:.2f} {unit}, ratio "
          f"{now / floor:.2f}x (bar <= {bar:g} {unit}: {verdict})")


def main() -> None:
    """Print now, floor and ratio for the plan, and optionally the 100,000-host plan."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hosts", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3,
                        help="time both this many times, in turns; keep the fastest")
    parser.add_argument("--big", action="store_true", help="also plan 100,000 hosts")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        work = Path(tmp)
        playbook = site(work, options.hosts)
        nows, floors, rss = [], [], 0.0
        for _ in range(max(1, options.rounds)):
            took, peak = nsxt("plan", playbook, "--format", "json")
            nows.append(took)
            rss = max(rss, peak)
            floors.append(parse_floor(work / "inventory.yaml"))
        rounds = ", ".join(f"{n:.2f}/{f:.2f}" for n, f in zip(nows, floors, strict=True))
        print(f"site: {options.hosts} hosts; plan peak RSS {rss:.0f} MiB; "
              f"rounds (now/floor s): {rounds}")
        report("plan --format json", min(nows), min(floors), 8.0)
        if options.big:
            big = work / "big"
            big.mkdir()
            took, rss = nsxt("plan", site(big, 100_000), "--format", "json")
            inventory = big / "inventory.yaml"
            absolute("plan of 100,000 hosts, wall", took, parse_floor(inventory), 8.0, "s")
            absolute("plan of 100,000 hosts, peak RSS", rss, parse_floor_rss(inventory),
                     300.0, "MiB")


if __name__ == "__main__":
    main()
