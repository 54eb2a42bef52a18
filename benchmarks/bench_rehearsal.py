"""Issue 23, row "rehearsal": the nsxt adapter against the emulator, at the engine's pace.

A rehearsal runs the real ``nsxt`` adapter against ``emulate nsxt`` on the real clock,
both at the same ``--speed``: its ideal wall time is the plan's estimate divided by the
speed. ``now`` is the wall time of ``run`` (a subprocess, start-up included); ``floor`` is
``estimate / speed``. Bar: ratio <= 1.15x (goal 1.05x). Also printed: the same site on
the simulated adapter on the real clock (what the engine alone costs), the HTTP
requests the runner sent, per second and per host, and the CPU each process spent per
request (the runner's includes the engine and its journal; on a shared machine the wall
time varies with the neighbours, the CPU much less).

Requests are counted by the emulator itself (its last line on stdout, once stopped, says
how many API requests it answered).  An earlier version counted them in a TCP relay
between the runner and the emulator: on a 2-core machine that third busy process (one
more loopback hop per request, the benchmark's own event loop copying every byte) took CPU
from the two being measured.

    python benchmarks/bench_rehearsal.py --hosts 1000            # the issue's row
    python benchmarks/bench_rehearsal.py --hosts 100 --speed 600 # quicker
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import report, write_site

USERNAME = "admin"
PASSWORD = "Bench-mark!pass1"


def start_emulator(inventory: Path, state_dir: Path, speed: float, env: dict[str, str]
                   ) -> tuple[subprocess.Popen[str], int]:
    """``emulate nsxt`` on a free port; the process and its port once it listens (its
    stdout stays open: the last line says how many requests it answered)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "upgrade", "emulate", "nsxt", "--inventory", str(inventory),
         "--state-dir", str(state_dir), "--port", "0", "--speed", str(speed)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
    if not match:
        proc.kill()
        raise SystemExit(f"the emulator did not start: {line!r}")
    return proc, int(match.group(1))


def timed_run(playbook: Path, state_dir: Path, speed: float, env: dict[str, str]
              ) -> tuple[float, float]:
    """Wall seconds of ``run PLAYBOOK --clock real --speed SPEED`` (checked), and the CPU
    seconds (user + system) the runner used."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "upgrade", "run", str(playbook), "--yes", "--clock", "real",
         "--speed", str(speed), "--state-dir", str(state_dir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stderr is not None
    errors = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    took = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"run {playbook.name}: exit {proc.returncode}: {errors[-400:]}")
    return took, usage.ru_utime + usage.ru_stime


def estimate_s(playbook: Path, env: dict[str, str]) -> float:
    """The plan's estimated duration in simulated seconds."""
    out = subprocess.run([sys.executable, "-m", "upgrade", "plan", str(playbook), "--format",
                          "json"], capture_output=True, text=True, env=env, check=True).stdout
    return float(json.loads(out)["estimated_duration_s"])


def main() -> None:
    """Print the rehearsal's wall time against its ideal, with the simulated baseline."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--speed", type=float, default=2000.0)
    options = parser.parse_args()
    env = {**os.environ, "NSXT_USERNAME": USERNAME, "NSXT_PASSWORD": PASSWORD}
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        work = Path(tmp)
        clusters = max(1, min(10, options.hosts // 100))
        simulated = write_site(work, clusters, options.hosts // clusters, 5)
        ideal = estimate_s(simulated, env) / options.speed
        sim_wall, _ = timed_run(simulated, work / "sim-state", options.speed, env)

        emulator, port = start_emulator(work / "inventory.yaml", work / "emulator",
                                        options.speed, env)
        try:
            real = work / "rehearsal.yaml"
            real.write_text(simulated.read_text().replace(
                "inventory: {adapter: simulated, source: inventory.yaml}",
                f'inventory: {{adapter: nsxt, manager: "http://127.0.0.1:{port}"}}'))
            nsxt_wall, runner_cpu = timed_run(real, work / "nsxt-state", options.speed, env)
        finally:
            emulator.terminate()
            assert emulator.stdout is not None
            rest = emulator.stdout.read()
            _, status, usage = os.wait4(emulator.pid, 0)
            emulator.returncode = os.waitstatus_to_exitcode(status)
        emulator_cpu = usage.ru_utime + usage.ru_stime
        answered = re.search(r"stopped after answering (\d+) API requests", rest)
        requests = int(answered.group(1)) if answered else 0
        hosts = clusters * (options.hosts // clusters)
        print(f"site: {hosts} hosts in {clusters} clusters, 5 edge clusters of 2; speed "
              f"{options.speed:g}; ideal {ideal:.1f} s (estimate / speed)")
        report("simulated adapter, real clock", sim_wall, ideal, 1.05)
        report("nsxt adapter vs emulator", nsxt_wall, ideal, 1.15)
        print(f"requests: {requests} in all, {requests / nsxt_wall:.0f}/s, "
              f"{requests / hosts:.1f} per host")
        if requests:  # what a request costs each side (the wall time of a shared machine varies)
            print(f"CPU per request: runner {runner_cpu / requests * 1000:.2f} ms "
                  f"({runner_cpu:.1f} s in all), emulator {emulator_cpu / requests * 1000:.2f} "
                  f"ms ({emulator_cpu:.1f} s in all, start-up included)")


if __name__ == "__main__":
    main()
