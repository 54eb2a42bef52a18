"""Helpers for the run/resume behaviour tests: the real CLI in subprocesses, and the
safety invariants of DESIGN section 5 checked on the simulated world's snapshot."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PLAYBOOKS = ROOT / "playbooks"
LAB = PLAYBOOKS / "lab-2.1-to-2.3.yaml"
PRODUCTION = PLAYBOOKS / "production-2.1-to-2.3.yaml"
BUNDLE = PLAYBOOKS / "bundles" / "VMware-NSX-upgrade-bundle-2.3.0.0.0.10085361.mub"
#: the components in the order DESIGN section 5 requires
ORDER = ("host", "edge", "controller", "manager")
#: a wide, colourless terminal-less environment, so output lines are not wrapped
ENV = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "PYTHONUNBUFFERED": "1"}
for _name in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
    ENV.pop(_name, None)


def command(*args: str | Path) -> list[str]:
    """The argv of ``nsxt-upgrade ARGS`` (as ``python -m upgrade``, the same entry point)."""
    return [sys.executable, "-m", "upgrade", *(str(a) for a in args)]


def nsxt(*args: str | Path, cwd: Path | None = None, stdin: str | None = "",
         timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``nsxt-upgrade ARGS`` to completion; stdin is an empty pipe unless given."""
    return subprocess.run(command(*args), cwd=cwd, input=stdin, capture_output=True,
                          text=True, env=ENV, timeout=timeout, check=False)


def spawn(*args: str | Path, cwd: Path | None = None) -> subprocess.Popen[str]:
    """Start ``nsxt-upgrade ARGS`` in the background (stdin closed, output piped)."""
    return subprocess.Popen(command(*args), cwd=cwd, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=ENV)


def copy_playbooks(tmp_path: Path) -> Path:
    """A private copy of the shipped playbooks (to edit); the directory holding them."""
    target = tmp_path / "playbooks"
    shutil.copytree(PLAYBOOKS, target)
    return target


def edit(path: Path, old: str, new: str) -> Path:
    """Replace ``old`` (which must occur) by ``new`` in the file at ``path``."""
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new), encoding="utf-8")
    return path


def sim_show_available() -> bool:
    """True once `nsxt-upgrade sim show` exists."""
    return (ROOT / "upgrade" / "cli" / "sim_cmd.py").is_file()


def world(state_dir: Path) -> dict[str, Any]:
    """The simulated world of ``state_dir`` as `nsxt-upgrade sim show --format json` prints it."""
    if sim_show_available():
        proc = nsxt("sim", "show", "--state-dir", state_dir, "--format", "json")
        assert proc.returncode == 0, proc.stderr
        doc: dict[str, Any] = json.loads(proc.stdout)
        return doc
    from upgrade.inputs.inventory import load_inventory
    from upgrade.sim.store import WorldStore

    store = WorldStore(state_dir / "world.sqlite")
    try:
        return store.load(load_inventory(state_dir / "inventory.yaml")).snapshot()
    finally:
        store.close()


def journal_records(state_dir: Path) -> list[tuple[str, float, dict[str, Any]]]:
    """Every journal record as (kind, at, payload), read with the project's journal API."""
    from upgrade.shell.journal import Journal

    with Journal.open(state_dir, create=False) as journal:
        return [(r.kind, r.at, r.payload) for r in journal.records()]


def peek_phase(state_dir: Path) -> str | None:
    """The last phase the journal says started, read-only (safe beside a live runner)."""
    path = state_dir / "journal.sqlite"
    if not path.is_file():
        return None
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1)
    except sqlite3.Error:
        return None
    try:
        row = conn.execute(
            "SELECT payload FROM records WHERE kind = 'action' AND payload LIKE "
            "'%\"phase_started\"%' ORDER BY seq DESC LIMIT 1").fetchone()
    except sqlite3.Error:
        return None
    finally:
        conn.close()
    if row is None:
        return None
    message: str = json.loads(row[0])["message"]
    return message.split()[0]


# -- invariants ------------------------------------------------------------------------------


def _overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def _intervals(entries: Iterable[dict[str, Any]], end_of_time: float) -> list[tuple[float, float]]:
    return [(e["start"], e["end"] if e["end"] is not None else end_of_time) for e in entries]


def max_concurrent(intervals: Iterable[tuple[float, float]]) -> int:
    """The most intervals open at one moment (an interval ending when another starts does
    not overlap it)."""
    points = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals],
                    key=lambda p: (p[0], p[1]))
    best = current = 0
    for _, delta in points:
        current += delta
        best = max(best, current)
    return best


def check_world(snapshot: dict[str, Any], plan: dict[str, Any], inventory: Any) -> None:
    """Assert every safety invariant of a finished run on the world's snapshot.

    ``plan`` is the run's plan JSON (DESIGN's ``plan --format json``), ``inventory``
    the :class:`~upgrade.core.model.Inventory` the run started from.
    """
    target = plan["target_version"]
    end_of_time = float(snapshot["time"])
    units = {u["id"]: u for u in snapshot["units"]}
    expected_units = set(inventory.units())
    assert set(units) == expected_units
    for unit in units.values():
        assert unit["version"] == target, f"{unit['id']} at {unit['version']}, not {target}"
        assert unit["upgrade_count"] == 1, f"{unit['id']} upgraded {unit['upgrade_count']} times"
        assert not unit["in_maintenance"], f"{unit['id']} left in maintenance mode"
        assert all(m["end"] is not None for m in unit["maintenance"]), unit
        assert all(u["end"] is not None for u in unit["upgrades"]), unit

    # VMs: none lost, each still in its own cluster, none running where an upgrade runs
    cluster_of = {h.id: h.cluster for h in inventory.hosts}
    start_host = {vm.id: (h.id, vm.powered_on) for h in inventory.hosts for vm in h.vms}
    vms = {v["id"]: v for v in snapshot["vms"]}
    assert set(vms) == set(start_host), "the set of VMs changed"
    for vm_id, vm in vms.items():
        origin, powered_on = start_host[vm_id]
        assert vm["powered_on"] == powered_on, vm
        assert cluster_of[vm["host"]] == cluster_of[origin], f"{vm_id} left its cluster: {vm}"
        if not powered_on:
            continue
        stays: list[tuple[str, float, float]] = []
        host, since = origin, float("-inf")
        for move in vm.get("moves", []):
            assert move["from"] == host, f"{vm_id}: moves do not chain: {vm['moves']}"
            stays.append((host, since, move["at"]))
            host, since = move["to"], move["at"]
        stays.append((host, since, float("inf")))
        for host, since, until in stays:
            for upgrade in _intervals(units[host]["upgrades"], end_of_time):
                assert not _overlap((since, until), upgrade), (
                    f"powered-on {vm_id} was on {host} during its upgrade {upgrade}")

    # edges of one edge cluster one at a time
    by_cluster: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for unit in units.values():
        if unit["kind"] == "edge":
            by_cluster[unit["group"]] += _intervals(unit["upgrades"], end_of_time)
    for cluster, intervals in by_cluster.items():
        assert max_concurrent(intervals) <= 1, f"two edges of {cluster} upgraded at once"

    # hosts in maintenance never above what the plan allows
    hosts_phase = next(p for p in plan["phases"] if p["name"] == "hosts")
    limits = sorted((g["max_parallel"] for g in hosts_phase["groups"]), reverse=True)
    overall = sum(limits[: hosts_phase["max_parallel_groups"]])
    everything: list[tuple[float, float]] = []
    for group in hosts_phase["groups"]:
        intervals = [i for h in group["units"]
                     for i in _intervals(units[h]["maintenance"], end_of_time)]
        assert max_concurrent(intervals) <= group["max_parallel"], (
            f"group {group['name']}: more than {group['max_parallel']} hosts in maintenance")
        everything += intervals
    assert max_concurrent(everything) <= overall

    # a host is upgraded only inside its maintenance interval (maintenance mode)
    if any(u["maintenance"] for u in units.values()):
        for unit in units.values():
            if unit["kind"] != "host":
                continue
            spans = _intervals(unit["maintenance"], end_of_time)
            for s, e in _intervals(unit["upgrades"], end_of_time):
                assert any(ms <= s and e <= me for ms, me in spans), (
                    f"{unit['id']} upgraded outside maintenance mode")

    # components strictly in order: everything of one kind ends before the next starts
    spans_of: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for unit in units.values():
        spans_of[unit["kind"]] += _intervals(unit["upgrades"], end_of_time)
        spans_of[unit["kind"]] += _intervals(unit["maintenance"], end_of_time)
    for before, after in itertools.pairwise(ORDER):
        if spans_of[before] and spans_of[after]:
            last = max(e for _, e in spans_of[before])
            first = min(s for s, _ in spans_of[after])
            assert last <= first, f"a {after} started at {first} before the {before}s ended " \
                f"at {last}"
    # ... and the Upgrade Coordinator before any of them
    coordinator = [o for o in snapshot.get("operations", []) if o["op"] == "coordinator"]
    first_unit = min((s for spans in spans_of.values() for s, _ in spans), default=None)
    if coordinator and first_unit is not None:
        assert coordinator[0]["end"] is not None and coordinator[0]["end"] <= first_unit
