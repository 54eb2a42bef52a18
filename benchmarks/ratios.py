"""Shared pieces of the ratio benchmarks (issue 12): the site, timing, peak RSS, the floors.

Each ``bench_*`` script measures ``now`` and its ``floor`` in the same process run and
prints ``ratio = now / floor`` against the issue's bar; nothing is asserted (the
machines are shared and noisy).
"""

from __future__ import annotations

import os
import resource
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.bench_run import write_site

__all__ = ["child_rss_mib", "commit_floor", "nsxt", "report", "site", "units_of"]

#: the issue's table: 100 clusters, 50 edge clusters of 2, 3 controllers
CLUSTERS = 100
EDGE_CLUSTERS = 50


def site(directory: Path, hosts: int) -> Path:
    """The benchmark site with ``hosts`` hosts: clusters of 100 hosts, at most 100 clusters."""
    clusters = max(1, min(CLUSTERS, hosts // 100))
    return write_site(directory, clusters, hosts // clusters, EDGE_CLUSTERS)


def units_of(hosts: int) -> int:
    """Units in the site: hosts, edges, 3 controllers and the manager."""
    return hosts + 2 * EDGE_CLUSTERS + 4


def nsxt(*args: str | Path) -> tuple[float, float]:
    """Run ``nsxt-upgrade ARGS`` (checked); its wall seconds and its peak RSS in MiB."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "upgrade", *map(str, args)],
                            stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    took = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"nsxt-upgrade {' '.join(map(str, args))}: exit {proc.returncode}")
    return took, usage.ru_maxrss / 1024


def child_rss_mib() -> float:
    """The largest peak RSS of any child so far, in MiB."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def commit_floor(directory: Path, commits: int) -> float:
    """Seconds for ``commits`` durable commits (SQLite WAL, synchronous=FULL), one row each."""
    db = sqlite3.connect(directory / "floor.sqlite", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE r(seq INTEGER PRIMARY KEY, kind TEXT, at REAL, payload TEXT)")
    payload = '{"op":"upgrade","type":"Start","unit":"h-000-000","attempt":1,"moves":[]}'
    start = time.perf_counter()
    for i in range(commits):
        db.execute("INSERT INTO r(kind, at, payload) VALUES('action', ?, ?)", (i, payload))
    took = time.perf_counter() - start
    db.close()
    return took


def report(what: str, now: float, floor: float, bar: float, unit: str = "s") -> None:
    """Print one row: ``now``, ``floor``, ``ratio`` and whether the bar is met."""
    ratio = now / floor
    verdict = "meets" if ratio <= bar else "MISSES"
    print(f"{what}: now {now:.2f} {unit}, floor {floor:.2f} {unit}, ratio {ratio:.2f}x "
          f"(bar <= {bar:g}x: {verdict})")
