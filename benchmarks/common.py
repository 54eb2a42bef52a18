"""What the benchmarks share: the generated site, timing a command, peak RSS, the floors.

The ratio benchmarks (issue 12, ``bench_plan``, ``bench_run_ratio``, ``bench_status``)
each measure ``now`` and its ``floor`` in the same process run and print
``ratio = now / floor`` against the issue's bar; nothing is asserted (the machines are
shared and noisy).  ``bench_run``, ``bench_report`` and ``bench_fleet`` use the site.

This module imports nothing of the package, so a test can load it as a script too.
"""

from __future__ import annotations

import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["BUNDLE", "child_rss_mib", "commit_floor", "nsxt", "report", "site", "units_of",
           "write_site"]

ROOT = Path(__file__).resolve().parent.parent
BUNDLE = ROOT / "playbooks" / "bundles" / "VMware-NSX-upgrade-bundle-2.3.0.0.0.10085361.mub"
#: the issue's table: 100 clusters, 50 edge clusters of 2, 3 controllers
CLUSTERS = 100
EDGE_CLUSTERS = 50


def write_site(directory: Path, clusters: int, hosts_per: int, edge_clusters: int) -> Path:
    """A large inventory and a parallel playbook for it (``big.yaml``) in ``directory``."""
    lines = ['nsx:', '  version: "2.1.0.0"', '  manager: nsx-mgr-01',
             '  controllers: [ctrl-01, ctrl-02, ctrl-03]', '  edge_clusters:']
    lines += [f'    - {{name: ec-{e:03d}, edges: [edge-{e:03d}-a, edge-{e:03d}-b]}}'
              for e in range(edge_clusters)]
    lines += ['compute:', '  clusters:']
    for c in range(clusters):
        lines += [f'    - name: cl-{c:03d}', '      drs: fully_automated', '      hosts:']
        lines += [f'        - {{id: h-{c:03d}-{h:03d}, vms: [vm-{c:03d}-{h:03d}-1, '
                  f'vm-{c:03d}-{h:03d}-2]}}' for h in range(hosts_per)]
    (directory / "inventory.yaml").write_text("\n".join(lines) + "\n")
    shutil.copy(BUNDLE, directory / "bundle.mub")
    playbook = directory / "big.yaml"
    playbook.write_text(
        'name: big\ntarget_version: "2.3.0.0"\nbundle: {path: bundle.mub}\n'
        'inventory: {adapter: simulated, source: inventory.yaml}\n'
        'hosts: {mode: parallel, max_parallel: 5, max_parallel_groups: 5}\n'
        'edges: {mode: parallel}\n'
    )
    return playbook


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
