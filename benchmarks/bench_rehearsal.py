"""Issue 23, row "rehearsal": the nsxt adapter against the emulator, at the engine's pace.

A rehearsal runs the real ``nsxt`` adapter against ``emulate nsxt`` on the real clock,
both at the same ``--speed``: its ideal wall time is the plan's estimate divided by the
speed. ``now`` is the wall time of ``run`` (a subprocess, start-up included); ``floor`` is
``estimate / speed``. Bar: ratio <= 1.15x (goal 1.05x). Also printed: the same site on
the simulated adapter on the real clock (what the engine alone costs), and the HTTP
requests the runner sent, per second and per host.

Requests are counted by a small TCP relay between the runner and the emulator that reads
each request line (plain HTTP, so the benchmark serves without ``--tls``); the relay adds
well under a millisecond per request on loopback.

    python benchmarks/bench_rehearsal.py --hosts 1000            # the issue's row
    python benchmarks/bench_rehearsal.py --hosts 100 --speed 600 # quicker
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import report, write_site

USERNAME = "admin"
PASSWORD = "Bench-mark!pass1"
#: the start of an HTTP/1.1 request line, as the relay sees it in the client's bytes
REQUEST = re.compile(rb"(?:GET|POST|PUT|DELETE|PATCH|HEAD) /\S* HTTP/1\.[01]\r\n")


class Relay:
    """A TCP relay on a free loopback port that counts the HTTP requests it forwards."""

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.requests = 0
        self.port = 0
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Relay:
        """Start relaying in a thread; returns once it listens."""
        self._thread.start()
        self._ready.wait(10)
        return self

    def stop(self) -> None:
        """Stop the relay's loop (open links are dropped)."""
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._link, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    async def _link(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream)
        except OSError:  # the emulated manager is down: so is the relay's far side
            writer.transport.abort()
            return
        await asyncio.gather(self._pipe(reader, up_writer, count=True),
                             self._pipe(up_reader, writer, count=False))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    *, count: bool) -> None:
        tail = b""
        try:
            while data := await reader.read(65536):
                if count:
                    seen = tail + data
                    self.requests += len(REQUEST.findall(seen)) - len(REQUEST.findall(tail))
                    tail = seen[-64:]
                writer.write(data)
                await writer.drain()
        except OSError:
            writer.transport.abort()
        else:
            writer.close()


def start_emulator(inventory: Path, state_dir: Path, speed: float, env: dict[str, str]
                   ) -> tuple[subprocess.Popen[str], int]:
    """``emulate nsxt`` on a free port; the process and its port once it listens."""
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


def timed_run(playbook: Path, state_dir: Path, speed: float, env: dict[str, str]) -> float:
    """Wall seconds of ``run PLAYBOOK --clock real --speed SPEED`` (checked)."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "upgrade", "run", str(playbook), "--yes", "--clock", "real",
         "--speed", str(speed), "--state-dir", str(state_dir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env, check=False)
    took = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"run {playbook.name}: exit {done.returncode}: {done.stderr[-400:]}")
    return took


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
        sim_wall = timed_run(simulated, work / "sim-state", options.speed, env)

        emulator, port = start_emulator(work / "inventory.yaml", work / "emulator",
                                        options.speed, env)
        relay = Relay(port).start()
        try:
            real = work / "rehearsal.yaml"
            real.write_text(simulated.read_text().replace(
                "inventory: {adapter: simulated, source: inventory.yaml}",
                f'inventory: {{adapter: nsxt, manager: "http://127.0.0.1:{relay.port}"}}'))
            nsxt_wall = timed_run(real, work / "nsxt-state", options.speed, env)
        finally:
            relay.stop()
            emulator.terminate()
            emulator.wait(10)
        hosts = clusters * (options.hosts // clusters)
        print(f"site: {hosts} hosts in {clusters} clusters, 5 edge clusters of 2; speed "
              f"{options.speed:g}; ideal {ideal:.1f} s (estimate / speed)")
        report("simulated adapter, real clock", sim_wall, ideal, 1.05)
        report("nsxt adapter vs emulator", nsxt_wall, ideal, 1.15)
        print(f"requests: {relay.requests} in all, {relay.requests / nsxt_wall:.0f}/s, "
              f"{relay.requests / hosts:.1f} per host")


if __name__ == "__main__":
    main()
