"""Benchmark for issue 9 item 2: a hung unit watched for an hour against a week.

The lab playbook with ``{unit: esx-01, op: upgrade, kind: hang}`` and ``timeouts:
{host_upgrade: N}``, run on the virtual clock until the unit times out; then ``status``.
Prints, per timeout: the run's wall time, its journal's records and bytes, and the wall
time of ``status``; last, the same for the plain lab (no fault) as the floor.  Before
quiet polls, a 100,000,000 s timeout wrote ~2 MB/s for hours and ``status`` took 46 s;
now the journal is the same size whatever the timeout.

    python benchmarks/bench_hang.py
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TIMEOUTS = (3600, 86400, 7 * 86400)


def lab(directory: Path, timeout: int) -> Path:
    """A copy of the lab with the hang and the timeout; the playbook."""
    books = directory / "playbooks"
    shutil.copytree(ROOT / "playbooks", books)
    inventory = books / "lab-inventory.yaml"
    inventory.write_text(inventory.read_text()
                         + "faults:\n  - {unit: esx-01, op: upgrade, kind: hang}\n")
    playbook = books / "lab-2.1-to-2.3.yaml"
    playbook.write_text(playbook.read_text() + f"timeouts: {{host_upgrade: {timeout}}}\n")
    return playbook


def timed(*args: str | Path) -> tuple[float, int]:
    """Wall seconds and exit code of ``nsxt-upgrade ARGS``."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "upgrade", *map(str, args)],
                          capture_output=True, text=True, check=False)
    return time.perf_counter() - start, proc.returncode


def main() -> None:
    """Print one line per timeout."""
    print(f"{'timeout_s':>10} {'run_s':>7} {'exit':>4} {'records':>8} {'bytes':>9} "
          f"{'status_s':>8}")
    for timeout in TIMEOUTS:
        with tempfile.TemporaryDirectory() as tmp:
            state_dir = Path(tmp) / "state"
            run_s, code = timed("run", lab(Path(tmp), timeout), "--yes", "--state-dir",
                                state_dir)
            db = state_dir / "journal.sqlite"
            with sqlite3.connect(db) as conn:
                records = conn.execute("SELECT count(*) FROM records").fetchone()[0]
            size = sum(p.stat().st_size for p in state_dir.glob("journal.sqlite*"))
            status_s, _ = timed("status", "--state-dir", state_dir)
            print(f"{timeout:>10} {run_s:>7.2f} {code:>4} {records:>8} {size:>9} "
                  f"{status_s:>8.2f}")
    with tempfile.TemporaryDirectory() as tmp:  # the floor: the plain lab, no fault
        state_dir = Path(tmp) / "state"
        run_s, code = timed("run", ROOT / "playbooks" / "lab-2.1-to-2.3.yaml", "--yes",
                            "--state-dir", state_dir)
        status_s, _ = timed("status", "--state-dir", state_dir)
        print(f"{'no fault':>10} {run_s:>7.2f} {code:>4} {'':>8} {'':>9} {status_s:>8.2f}")


if __name__ == "__main__":
    main()
