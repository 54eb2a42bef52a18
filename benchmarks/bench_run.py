"""Benchmarks for issue 4: a 10,000-host simulated run, the journal, the makespan, resume.

Prints numbers; asserts nothing (machines here are shared and noisy). Ratios are
against baselines measured in the same run.

    python benchmarks/bench_run.py                 # 10,000 hosts in 100 clusters, 50 edge clusters
    python benchmarks/bench_run.py --hosts 1000    # quicker
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import commit_floor, write_site  # after the path is set


def lower_bound(plan: dict[str, Any], durations: dict[str, int], vms_per_host: int) -> float:
    """A makespan no schedule can beat: each phase's own bound, summed (phases are strict)."""
    total = 0.0
    for phase in plan["phases"]:
        name = phase["name"]
        if name == "hosts":
            work = durations["host_upgrade"] + vms_per_host * durations["vmotion"]
            groups = phase["groups"]
            slots = sum(sorted((g["max_parallel"] for g in groups),
                               reverse=True)[: phase["max_parallel_groups"]])
            units = sum(len(g["units"]) for g in groups)
            per_group = max(len(g["units"]) / g["max_parallel"] for g in groups) * work
            total += max(units * work / slots, per_group, work)
        elif name == "edges":
            total += max(len(g["units"]) for g in phase["groups"]) * durations["edge_upgrade"]
        else:
            total += phase["estimated_duration_s"]
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hosts", type=int, default=10_000)
    parser.add_argument("--clusters", type=int, default=100)
    parser.add_argument("--edge-clusters", type=int, default=50)
    args = parser.parse_args()
    import json

    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        work = Path(tmp)
        playbook = write_site(work, args.clusters, args.hosts // args.clusters,
                              args.edge_clusters)
        state = work / "state"
        t0 = time.perf_counter()
        plan_out = subprocess.run([sys.executable, "-m", "upgrade", "plan", str(playbook),
                                   "--format", "json"], capture_output=True, text=True,
                                  check=True)
        plan_s = time.perf_counter() - t0
        plan = json.loads(plan_out.stdout)
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "upgrade", "run", str(playbook), "--yes",
                        "--state-dir", str(state)], stdout=subprocess.DEVNULL, check=True)
        run_s = time.perf_counter() - t0
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        rss_mib = usage.ru_maxrss / 1024
        cpu_s = usage.ru_utime + usage.ru_stime  # plan + run children, CPU only

        from upgrade.shell.journal import Journal
        from upgrade.shell.status import run_status

        with Journal.open(state, create=False) as journal:
            records = journal.count()
            makespan = max(r.at for r in journal.records())
        t0 = time.perf_counter()
        doc, _ = run_status(state)
        replay_s = time.perf_counter() - t0
        baseline = commit_floor(work, 5_000) / 5_000  # one raw insert, one commit
        bound = lower_bound(plan, {"host_upgrade": 900, "edge_upgrade": 600, "vmotion": 30},
                            vms_per_host=2)

        units = args.hosts + 2 * args.edge_clusters + 4
        print(f"site: {args.hosts} hosts in {args.clusters} clusters, "
              f"{args.edge_clusters} edge clusters ({units} units)")
        print(f"plan (validate + estimate, a full engine drive): {plan_s:.2f} s")
        print(f"run, virtual clock: {run_s:.2f} s wall, peak RSS {rss_mib:.0f} MiB "
              f"(largest child process)")
        print(f"journal: {records} records, {run_s / records * 1e6:.1f} us/record for the "
              f"whole run")
        print(f"raw SQLite WAL synchronous=FULL insert, one commit each: "
              f"{baseline * 1e6:.1f} us/record")
        print(f"ratio run/raw per record: {run_s / records / baseline:.2f} wall "
              f"(goal <= 2); CPU of plan+run per record {cpu_s / records * 1e6:.1f} us, "
              f"{cpu_s / records / baseline:.2f} of the raw insert")
        print(f"makespan {makespan:.0f} s simulated, lower bound {bound:.0f} s: "
              f"{(makespan / bound - 1) * 100:.2f}% above (goal <= 5%); plan estimated "
              f"{plan['estimated_duration_s']} s")
        print(f"replay of the {records}-record journal (status): {replay_s:.2f} s "
              f"(state {doc['state']}; goal: resume from 100,000 records under 1 s)")


if __name__ == "__main__":
    main()
