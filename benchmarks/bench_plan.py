"""Issue 12, row "plan --format json": the plan against parsing its inventory.

``now`` is ``plan --format json`` (a subprocess: validation and the estimate, a full
engine drive); ``floor`` is parsing the same inventory YAML with PyYAML's CSafeLoader
in this process. Bar: ratio <= 8x. Both are timed ``--rounds`` times, in turns, and the
fastest of each is kept (the machine is shared: a neighbour's burst should not decide
the ratio); each round's figures are printed too. ``--big`` adds the two rows of issue
23 item 4 (slow): the 100,000-host plan's wall time (bar <= 8 s; floor: CSafeLoader
parsing its inventory; both timed ``--rounds`` times in turns, the fastest kept, as
above: one run of it varies by up to 15% here) and its peak RSS (the largest of the
rounds; bar <= 300 MiB; floor: the peak RSS of a process that only parses the inventory
with CSafeLoader).

    python benchmarks/bench_plan.py                 # 10,000 hosts
    python benchmarks/bench_plan.py --hosts 1000    # quicker
    python benchmarks/bench_plan.py --big           # plus 100,000 hosts
    python benchmarks/bench_plan.py --estimate-only [--big]   # the estimate alone

``--estimate-only`` times just the plan's estimate (the engine driven over the simulated
world, :func:`upgrade.sim.estimate.estimate`) in this process, on inputs read once: CPU
seconds, fastest of ``--rounds``, per event too (bar at 100,000 hosts: <= 5 s).
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


def parse_floor_apart(inventory: Path) -> float:
    """Seconds to parse ``inventory`` with ``yaml.CSafeLoader``, timed in a process of its
    own: parsed here, its 400 MiB would stay in this process and count in the peak RSS of
    every ``nsxt-upgrade`` forked after it (a child's peak includes what it was forked with)."""
    code = ("import sys, time, yaml; start = time.perf_counter(); "
            "yaml.load(open(sys.argv[1], 'rb'), Loader=yaml.CSafeLoader); "
            "print(time.perf_counter() - start)")
    done = subprocess.run([sys.executable, "-c", code, str(inventory)], check=True,
                          capture_output=True, text=True)
    return float(done.stdout)


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


def estimate_only(work: Path, hosts: int, rounds: int) -> float:
    """Print and return the CPU seconds of the estimate of a ``hosts``-host site (fastest of
    ``rounds``); inputs are read and validated once, before the clock starts."""
    from upgrade.inputs.playbook import load
    from upgrade.prepare.planning import prepare_loaded
    from upgrade.sim.estimate import estimate

    work.mkdir(exist_ok=True)
    loaded = load(site(work, hosts))
    # recorded (empty) estimates: the plan without simulating it, so that only the
    # estimate below is timed
    prepared = prepare_loaded(loaded, recorded_plan={})
    took = []
    for _ in range(max(1, rounds)):
        start = time.process_time()
        plan = estimate(prepared.plan, prepared.inventory, loaded.playbook)
        took.append(time.process_time() - start)
    events = 7 * hosts  # a host's pipeline: 3 starts and 4 polls, each an event
    print(f"estimate of {hosts} hosts: {min(took):.2f} s CPU (rounds: "
          f"{', '.join(f'{t:.2f}' for t in took)}), ~{min(took) / events * 1e6:.1f} us per "
          f"event; estimated duration {plan.estimated_duration_s} s")
    return min(took)


def main() -> None:
    """Print now, floor and ratio for the plan, and optionally the 100,000-host plan."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hosts", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3,
                        help="time both this many times, in turns; keep the fastest")
    parser.add_argument("--big", action="store_true", help="also plan 100,000 hosts")
    parser.add_argument("--estimate-only", action="store_true",
                        help="time only the plan's estimate, in this process")
    options = parser.parse_args()
    if options.estimate_only:
        with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
            estimate_only(Path(tmp) / "site", options.hosts, options.rounds)
            if options.big:
                took = estimate_only(Path(tmp) / "big", 100_000, 1)
                verdict = "meets" if took <= 5.0 else "MISSES"
                print(f"estimate of 100,000 hosts: now {took:.2f} s (bar <= 5 s: {verdict})")
        return
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
            playbook = site(big, 100_000)
            inventory = big / "inventory.yaml"
            bigs, big_floors, rss = [], [], 0.0
            for _ in range(max(1, options.rounds)):  # in turns too, fastest kept
                took, peak = nsxt("plan", playbook, "--format", "json")
                bigs.append(took)
                rss = max(rss, peak)
                big_floors.append(parse_floor_apart(inventory))
            rounds = ", ".join(f"{n:.2f}/{f:.2f}" for n, f in zip(bigs, big_floors,
                                                                  strict=True))
            print(f"site: 100000 hosts; rounds (now/floor s): {rounds}")
            absolute("plan of 100,000 hosts, wall", min(bigs), min(big_floors), 8.0, "s")
            absolute("plan of 100,000 hosts, peak RSS", rss, parse_floor_rss(inventory),
                     300.0, "MiB")


if __name__ == "__main__":
    main()
