"""Issue 12, row "status after the run": status of a big run against that of the lab run.

``now`` is ``status`` (a subprocess) on the state of a finished 10,000-host run;
``floor`` is ``status`` on the state of the finished lab run
(``playbooks/lab-2.1-to-2.3.yaml``), both measured in this process run. Bar: ratio <= 2x.

    python benchmarks/bench_status.py                 # 10,000 hosts
    python benchmarks/bench_status.py --hosts 1000    # quicker
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import nsxt, report, site
from upgrade.shell.journal import Journal

LAB = Path(__file__).resolve().parent.parent / "playbooks" / "lab-2.1-to-2.3.yaml"


def best_of(runs: int, *args: str | Path) -> float:
    """The fastest of ``runs`` timings of ``nsxt-upgrade ARGS``."""
    return min(nsxt(*args)[0] for _ in range(runs))


def main() -> None:
    """Run both, then print now, floor and ratio of their status."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hosts", type=int, default=10_000)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        work = Path(tmp)
        big, lab = work / "big-state", work / "lab-state"
        nsxt("run", site(work, options.hosts), "--yes", "--state-dir", big)
        nsxt("run", LAB, "--yes", "--state-dir", lab)
        with Journal.open_readonly(big) as journal:
            records = journal.count()
        now = best_of(3, "status", "--state-dir", big, "--format", "json")
        floor = best_of(3, "status", "--state-dir", lab, "--format", "json")
        print(f"site: {options.hosts} hosts, journal of {records} records")
        report("status after the run", now, floor, 2.0)


if __name__ == "__main__":
    main()
