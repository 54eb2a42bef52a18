"""Saved plans: ``plan --out PLAN.json`` and ``run --plan PLAN.json``.

A saved plan is the ``plan --format json`` document plus what it was made
from, so that ``run --plan`` runs exactly that plan or refuses (exit 4) naming
what changed since:

* ``fingerprints``: sha256 of the playbook's bytes, of a canonical form of the
  inventory as loaded (simulated) or discovered (nsxt), and of the compatibility
  data;
* ``inventory_summary``: the parts of the inventory an operator reasons about
  (versions, hosts per cluster with their DRS level and powered-on VMs, edges,
  controllers, manager, health findings), to say *what* differs, not only that
  something does;
* ``playbook_path`` (absolute) and ``acks``, to plan again the same way.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from upgrade.core.model import Inventory
from upgrade.errors import InputError, RefusedError
from upgrade.prepare.planning import Prepared
from upgrade.render.plan_json import plan_to_json

FORMAT = "nsxt-upgrade saved plan 1"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _canonical(value: Any) -> Any:
    """Plain JSON data for a dataclass tree (enums and versions as their text)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _canonical(getattr(value, f.name)) for f in dataclasses.fields(value)
                if f.compare}
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return str(value)


def inventory_fingerprint(inventory: Inventory) -> str:
    """sha256 of the inventory's canonical JSON form."""
    text = json.dumps(_canonical(inventory), sort_keys=True, separators=(",", ":"))
    return _sha(text.encode())


def compat_fingerprint() -> str:
    """sha256 of the compatibility data shipped in the package: the matrix and the flows
    (the Upgrade Coordinator's order per hop, which the plan's phases follow)."""
    package = resources.files("upgrade.compat")
    return _sha(b"".join(package.joinpath(name).read_bytes()
                         for name in ("matrix.yaml", "flows.yaml")))


def inventory_summary(inventory: Inventory) -> dict[str, Any]:
    """What an operator would name when the inventory changes."""
    return {
        "version": str(inventory.version),
        "manager": inventory.manager,
        "controllers": list(inventory.controllers),
        "edges": {ec.name: list(ec.edges) for ec in inventory.edge_clusters},
        "clusters": {c.name: {"drs": c.drs.value, "hosts": list(c.hosts)}
                     for c in inventory.clusters},
        "running_vms": {h.id: [vm.id for vm in h.running_vms] for h in inventory.hosts},
        "findings": sorted(f.id for f in (*inventory.warnings, *inventory.errors)),
    }


def saved_plan(prepared: Prepared, playbook_path: Path, acks: Sequence[str]) -> dict[str, Any]:
    """The document ``plan --out`` writes."""
    doc = plan_to_json(prepared.plan)
    doc["saved_plan"] = {
        "format": FORMAT,
        "playbook_path": str(playbook_path.resolve()),
        "acks": list(acks),
        "fingerprints": {
            "playbook": _sha(playbook_path.read_bytes()),
            "inventory": inventory_fingerprint(prepared.inventory),
            "compat": compat_fingerprint(),
        },
        "inventory_summary": inventory_summary(prepared.inventory),
    }
    return doc


def load_saved(path: Path) -> dict[str, Any]:
    """A saved plan file, checked to be one (exit 2 otherwise)."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"{path}: cannot read the saved plan: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise InputError(f"{path}: not a saved plan (not JSON: {exc})") from None
    meta = doc.get("saved_plan") if isinstance(doc, dict) else None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise InputError(f"{path}: not a saved plan of this nsxt-upgrade (write one with "
                         "`nsxt-upgrade plan PLAYBOOK --out PLAN.json`)")
    return dict(doc)


def differences(saved: Mapping[str, Any], prepared: Prepared, playbook_path: Path) -> list[str]:
    """What differs between a saved plan and the plan made now; empty when it matches."""
    meta = saved["saved_plan"]
    prints = meta["fingerprints"]
    out: list[str] = []
    if _sha(playbook_path.read_bytes()) != prints["playbook"]:
        out.append(f"the playbook {playbook_path} was edited")
    if compat_fingerprint() != prints["compat"]:
        out.append("the compatibility data is different (another nsxt-upgrade version?)")
    if inventory_fingerprint(prepared.inventory) != prints["inventory"]:
        named = _inventory_changes(meta["inventory_summary"],
                                   inventory_summary(prepared.inventory))
        out += named or ["the inventory changed (durations, faults or other details)"]
    if not out:
        now = _timeless(plan_to_json(prepared.plan))
        kept = _timeless({k: v for k, v in saved.items() if k != "saved_plan"})
        if json.loads(json.dumps(now, default=str)) != kept:
            out.append("the plan made now differs from the saved one (another nsxt-upgrade "
                       "version?)")
    return out


#: what depends on when the run starts (the calendar), not on what it was planned from
_CALENDAR_KEYS = ("estimated_start_at", "estimated_finish_at", "windows")


def _timeless(plan: Mapping[str, Any]) -> dict[str, Any]:
    """``plan`` without what depends on the calendar: with a maintenance window, the
    estimates too (they wait for the windows from the moment the run starts)."""
    out = {k: v for k, v in plan.items() if k not in _CALENDAR_KEYS}
    if "window" in out:
        out.pop("estimated_duration_s", None)
        out.pop("schedule", None)
        out["phases"] = [{k: v for k, v in phase.items()
                          if k not in ("estimated_start_s", "estimated_duration_s")}
                         for phase in out.get("phases", [])]
    return out


def _inventory_changes(then: Mapping[str, Any], now: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    if then["version"] != now["version"]:
        out.append(f"NSX-T version changed: {then['version']} -> {now['version']}")
    hosts_then = {h: c for c, v in then["clusters"].items() for h in v["hosts"]}
    hosts_now = {h: c for c, v in now["clusters"].items() for h in v["hosts"]}
    out += [f"host added: {h} (cluster {hosts_now[h]})" for h in hosts_now
            if h not in hosts_then]
    out += [f"host removed: {h} (cluster {hosts_then[h]})" for h in hosts_then
            if h not in hosts_now]
    out += [f"host {h} moved: cluster {hosts_then[h]} -> {hosts_now[h]}" for h in hosts_now
            if h in hosts_then and hosts_then[h] != hosts_now[h]]
    for name, cluster in now["clusters"].items():
        before = then["clusters"].get(name)
        if before is not None and before["drs"] != cluster["drs"]:
            out.append(f"DRS of cluster {name} changed: {before['drs']} -> {cluster['drs']}")
    for host, vms in now["running_vms"].items():
        before = then["running_vms"].get(host)
        if before is not None and before != vms:
            out.append(f"powered-on VMs of host {host} changed: {_short(before)} -> "
                       f"{_short(vms)}")
    for key, label in (("edges", "edge clusters"), ("controllers", "controllers"),
                       ("manager", "manager"), ("findings", "pre-check findings")):
        if then[key] != now[key]:
            out.append(f"{label} changed: {_short(then[key])} -> {_short(now[key])}")
    return out


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 200 else text[:197] + "..."


def check(saved: Mapping[str, Any], prepared: Prepared, playbook_path: Path,
          plan_path: Path) -> None:
    """Refuse (exit 4) to run a saved plan that no longer matches, naming why."""
    found = differences(saved, prepared, playbook_path)
    if found:
        raise RefusedError(
            f"{plan_path} no longer matches what it was made from:\n  " + "\n  ".join(found)
            + f"\nmake a new plan with `nsxt-upgrade plan {playbook_path} --out {plan_path}` "
            "and review it"
        )


def for_run(plan_path: Path, playbook: Path | None, acks: Sequence[str]
            ) -> tuple[Path, list[str], Callable[[Prepared], None]]:
    """``run --plan``: the playbook and acknowledgements to plan with, and the check
    that the plan made now matches the saved one."""
    saved = load_saved(plan_path)
    meta = saved["saved_plan"]
    recorded = Path(meta["playbook_path"])
    if playbook is not None and playbook.resolve() != recorded:
        raise InputError(f"{plan_path} was made from {recorded}, not {playbook}; leave "
                         "PLAYBOOK out to run the saved plan")
    merged = list(dict.fromkeys([*meta["acks"], *acks]))

    def matches(prepared: Prepared) -> None:
        check(saved, prepared, recorded, plan_path)

    return recorded, merged, matches
