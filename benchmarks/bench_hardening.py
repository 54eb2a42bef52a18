"""What issue 21's hardening costs and bounds (nothing asserted: shared, noisy machines).

* ``resume --events`` catch-up: the whole journal's event stream derived again and
  compared with the file, on a finished virtual run of ``--hosts`` hosts (the worst
  case: every resume into the same file pays it once);
* refusing tampered saved plans: 100,000-deep JSON, a 64 MiB file of ``[]`` pairs, a
  FIFO with no writer (wall time of the whole `run --plan` process).

    python benchmarks/bench_hardening.py                 # 3,000 hosts
    python benchmarks/bench_hardening.py --hosts 300     # quicker
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import nsxt, site


def catch_up_seconds(state_dir: Path, events: Path) -> tuple[float, int, int]:
    """Seconds to derive and compare the stream; records read; lines written (0)."""
    from upgrade.shell.events import EventLog
    from upgrade.shell.journal import Journal
    from upgrade.shell.replay import replay
    from upgrade.shell.start_record import load_run, recorded_engine

    with Journal.open_readonly(state_dir) as journal:
        engine = recorded_engine(load_run(state_dir, journal), journal)
        replay(journal, engine)
        log = EventLog(events)
        log.attach(journal.get_meta("calendar_start") or journal.get_meta("started_at"),
                   engine, float(journal.get_meta("clock_origin") or 0.0))
        started = time.perf_counter()
        written = log.catch_up((r.kind, r.at, r.payload) for r in journal.records())
        took = time.perf_counter() - started
        log.close()
        return took, journal.count(), written


def refusal_seconds(work: Path) -> dict[str, float]:
    """Wall seconds of `run --plan` refusing each tampered file."""
    deep = work / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    pairs = work / "pairs.json"
    pairs.write_text("[" + "[]," * (64 * 2**20 // 3 - 1) + "[]]")
    fifo = work / "fifo.json"
    os.mkfifo(fifo)
    out = {}
    for name, path in (("100,000-deep JSON", deep), ("~64 MiB of []", pairs), ("FIFO", fifo)):
        started = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "upgrade", "run", "--plan", str(path),
                               "--yes", "--state-dir", str(work / "s")],
                              capture_output=True, text=True, timeout=300, check=False)
        out[name] = time.perf_counter() - started
        assert proc.returncode == 2, proc.stderr
    return out


def main() -> None:
    """Print the measurements."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--hosts", type=int, default=3000)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        state_dir, events = work / "state", work / "events.jsonl"
        nsxt("run", site(work, options.hosts), "--yes", "--state-dir", state_dir,
             "--events", events)
        took, records, written = catch_up_seconds(state_dir, events)
        print(f"catch-up over a finished {options.hosts}-host run: {took:.2f} s for "
              f"{records} journal records, {written} lines missing")
        for name, seconds in refusal_seconds(work).items():
            print(f"run --plan refuses {name}: {seconds:.2f} s (whole process)")


if __name__ == "__main__":
    main()
