"""Benchmark: `report` and `history` on a large run's journal, and the `--events` stream's cost.

Prints numbers; asserts nothing (machines here are shared and noisy).

    python benchmarks/bench_report.py                # 1,000 hosts in 10 clusters
    python benchmarks/bench_report.py --hosts 5000
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import write_site  # after the path is set


def timed(*args: str | Path) -> float:
    """Wall seconds of ``nsxt-upgrade ARGS`` (checked to exit 0)."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "upgrade", *map(str, args)], check=True,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    """Run once without and once with --events, then time report and history."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hosts", type=int, default=1000)
    options = parser.parse_args()
    clusters = max(1, options.hosts // 100)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        playbook = write_site(directory, clusters, options.hosts // clusters, 5)
        plain = timed("run", playbook, "--yes", "--state-dir", directory / "a")
        events = directory / "events.jsonl"
        streamed = timed("run", playbook, "--yes", "--state-dir", directory / "b",
                         "--events", events)
        lines = sum(1 for _ in events.open())
        print(f"run, {options.hosts} hosts: {plain:.2f}s; with --events: {streamed:.2f}s "
              f"({lines} events)")
        baseline = timed("--version")
        for fmt in ("json", "markdown", "html"):
            took = timed("report", "--state-dir", directory / "a", "--format", fmt,
                         "-o", directory / f"report.{fmt}")
            size = (directory / f"report.{fmt}").stat().st_size
            print(f"report --format {fmt}: {took:.2f}s ({size / 1e6:.1f} MB; "
                  f"start-up alone {baseline:.2f}s)")
        print(f"history over 2 runs: {timed('history', '--root', directory):.2f}s")


if __name__ == "__main__":
    main()
