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
* ``playbook_path`` (absolute), ``acks`` and the site ``matrix`` overlay (absolute,
  or null), to plan again the same way;
* ``made_by``: the nsxt-upgrade version that wrote it;
* ``fingerprints.document``: sha256 of the rest of the document in canonical form, so
  that a file edited by hand since ``plan --out`` wrote it is told apart from inputs
  that changed.

A file that is not a saved plan, or one altered by hand (a wrong type anywhere, JSON
nested deeper than any plan, a FIFO or a device instead of a file), is one line,
exit 2, read in bounded time and memory.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import stat
from collections.abc import Callable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from upgrade import __version__
from upgrade.core.model import Inventory
from upgrade.errors import InputError, RefusedError
from upgrade.prepare.planning import Prepared
from upgrade.render.plan_json import plan_to_json

FORMAT = "nsxt-upgrade saved plan 1"
#: the largest saved plan read (a 10,000-host plan is a few MB)
MAX_BYTES = 64 * 2**20
#: the deepest nesting of arrays and objects read (a plan nests fewer than 10 levels)
MAX_DEPTH = 32
#: the most arrays and objects read (a 10,000-host plan has about 41,000)
MAX_CONTAINERS = 1_000_000
_HEX64 = re.compile(r"[0-9a-f]{64}")
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_INNERMOST = re.compile(r"\[\]|\{\}")


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


def compat_fingerprint(*overlays: Path | None) -> str:
    """sha256 of the compatibility data: the package's matrix and flows (the Upgrade
    Coordinator's order per hop, which the plan's phases follow), with the site files laid
    over it (the playbook's ``compatibility.matrix``, then ``--matrix``; None: not given)."""
    package = resources.files("upgrade.compat")
    data = b"".join(package.joinpath(name).read_bytes() for name in ("matrix.yaml", "flows.yaml"))
    given = [o for o in overlays if o is not None]
    if not given:
        return _sha(data)
    digest = hashlib.sha256(data)
    for overlay in given:
        try:
            digest.update(b"\0" + overlay.read_bytes())
        except OSError as exc:
            raise InputError(f"{overlay}: cannot read the compatibility data: "
                             f"{exc.strerror or exc}") from None
    return digest.hexdigest()


def overlays(prepared: Prepared, site: Path | None) -> tuple[Path | None, Path | None]:
    """The compatibility files a plan of ``prepared`` was made with: the playbook's own
    ``compatibility.matrix`` (relative to it) and ``--matrix``."""
    declared = prepared.playbook.compatibility.matrix
    return (prepared.loaded.path.parent / declared if declared else None), site


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


def saved_plan(prepared: Prepared, playbook_path: Path, acks: Sequence[str],
               site: Path | None = None) -> dict[str, Any]:
    """The document ``plan --out`` writes (as JSON data); ``site``: ``--matrix``."""
    doc = plan_to_json(prepared.plan)
    doc["saved_plan"] = {
        "format": FORMAT,
        "made_by": __version__,
        "playbook_path": str(playbook_path.resolve()),
        "acks": list(acks),
        "matrix": str(site.resolve()) if site is not None else None,
        "fingerprints": {
            "playbook": _sha(playbook_path.read_bytes()),
            "inventory": inventory_fingerprint(prepared.inventory),
            "compat": compat_fingerprint(*overlays(prepared, site)),
        },
        "inventory_summary": inventory_summary(prepared.inventory),
    }
    data: dict[str, Any] = json.loads(json.dumps(doc, default=str))
    data["saved_plan"]["fingerprints"]["document"] = _document_print(data)
    return data


def _document_print(doc: Mapping[str, Any]) -> str:
    """sha256 of ``doc`` in canonical form, without its own ``document`` fingerprint."""
    meta = dict(doc["saved_plan"])
    meta["fingerprints"] = {k: v for k, v in meta["fingerprints"].items() if k != "document"}
    text = json.dumps({**doc, "saved_plan": meta}, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False)
    return _sha(text.encode())


def _altered(path: Path, what: str) -> InputError:
    return InputError(f"{path}: the plan file is not valid or was altered since `plan --out` "
                      f"wrote it ({what}); make a new one with `nsxt-upgrade plan PLAYBOOK "
                      f"--out {path}` and review it")


def _read_bounded(path: Path) -> str:
    """The file's text: a regular file of at most :data:`MAX_BYTES`, opened without
    blocking (a FIFO with no writer would wait forever)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise InputError(f"{path}: cannot read the saved plan: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise InputError(f"{path}: not a saved plan: not a regular file (a FIFO, a "
                             "device or a socket); name the file `plan --out` wrote")
        if info.st_size > MAX_BYTES:
            raise _altered(path, f"{info.st_size:,} bytes, more than the {MAX_BYTES // 2**20} "
                           "MiB a plan takes")
        with os.fdopen(fd, "rb", closefd=False) as stream:
            data = stream.read(MAX_BYTES + 1)
    except OSError as exc:
        raise InputError(f"{path}: cannot read the saved plan: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if len(data) > MAX_BYTES:
        raise _altered(path, f"more than the {MAX_BYTES // 2**20} MiB a plan takes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not a saved plan (not UTF-8 text: byte "
                         f"{exc.start})") from None


def _shape_problem(text: str) -> str | None:
    """What makes the JSON ``text`` too costly to parse, or None: more than
    :data:`MAX_CONTAINERS` arrays and objects, nesting deeper than :data:`MAX_DEPTH`
    levels, or brackets that do not pair up.  Counted at C speed with strings skipped:
    the innermost pairs are removed :data:`MAX_DEPTH` times and something is left."""
    outside_strings = _STRINGS.sub("", text)
    containers = outside_strings.count("[") + outside_strings.count("{")
    if containers > MAX_CONTAINERS:
        return f"{containers:,} arrays and objects, more than the {MAX_CONTAINERS:,} a plan has"
    brackets = _NOT_BRACKET.sub("", outside_strings)
    for _ in range(MAX_DEPTH):
        if not brackets:
            return None
        brackets = _INNERMOST.sub("", brackets)
    return f"JSON nested more than {MAX_DEPTH} levels deep, or not JSON" if brackets else None


def load_saved(path: Path) -> dict[str, Any]:
    """A saved plan file, checked to be one written by ``plan --out`` and not altered
    since (exit 2 otherwise, one line, in bounded time)."""
    text = _read_bounded(path)
    problem = _shape_problem(text)
    if problem is not None:
        raise _altered(path, problem)
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise InputError(f"{path}: not a saved plan (not JSON: {exc})") from None
    meta = doc.get("saved_plan") if isinstance(doc, dict) else None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise InputError(f"{path}: not a saved plan of this nsxt-upgrade (write one with "
                         "`nsxt-upgrade plan PLAYBOOK --out PLAN.json`)")
    _check_meta(path, meta)
    prints = meta["fingerprints"]
    if "document" in prints and prints["document"] != _document_print(doc):
        raise _altered(path, "its content no longer matches its own fingerprint: it was "
                       "edited by hand")
    return dict(doc)


def _check_meta(path: Path, meta: Mapping[str, Any]) -> None:
    """The saved plan's own record has the types ``plan --out`` writes."""
    def bad(what: str) -> InputError:
        return _altered(path, f"saved_plan.{what}")

    if not isinstance(meta.get("playbook_path"), str) or not meta["playbook_path"] \
            or "\0" in meta["playbook_path"]:
        raise bad("playbook_path is not a path")
    acks = meta.get("acks")
    if not isinstance(acks, list) or not all(isinstance(a, str) for a in acks):
        raise bad("acks is not a list of ids")
    matrix = meta.get("matrix")
    if matrix is not None and (not isinstance(matrix, str) or not matrix or "\0" in matrix):
        raise bad("matrix is not a path")
    prints = meta.get("fingerprints")
    if not isinstance(prints, dict):
        raise bad("fingerprints is not a mapping")
    for name in ("playbook", "inventory", "compat", *(("document",) if "document" in prints
                                                       else ())):
        if not isinstance(prints.get(name), str) or not _HEX64.fullmatch(prints[name]):
            raise bad(f"fingerprints.{name} is not a sha256")
    if not isinstance(meta.get("inventory_summary"), dict):
        raise bad("inventory_summary is not a mapping")


def differences(saved: Mapping[str, Any], prepared: Prepared, playbook_path: Path,
                site: Path | None = None, plan_path: Path | None = None) -> list[str]:
    """What differs between a saved plan and the plan made now; empty when it matches.

    ``site``: the ``--matrix`` the plan is made with now. A saved plan whose parts do not
    have the shapes ``plan --out`` writes is an InputError naming ``plan_path``."""
    try:
        return _differences(saved, prepared, playbook_path, site)
    except (KeyError, TypeError, AttributeError, ValueError, IndexError) as exc:
        raise _altered(plan_path or Path("the saved plan"),
                       f"{type(exc).__name__} reading it: {exc}") from None


def _differences(saved: Mapping[str, Any], prepared: Prepared, playbook_path: Path,
                 site: Path | None) -> list[str]:
    meta = saved["saved_plan"]
    prints = meta["fingerprints"]
    out: list[str] = []
    if _sha(playbook_path.read_bytes()) != prints["playbook"]:
        out.append(f"the playbook {playbook_path} was edited")
    if compat_fingerprint(*overlays(prepared, site)) != prints["compat"]:
        out.append("the compatibility data is different (another nsxt-upgrade version, or "
                   "another --matrix or compatibility.matrix file, or one edited since)")
    if inventory_fingerprint(prepared.inventory) != prints["inventory"]:
        named = _inventory_changes(meta["inventory_summary"],
                                   inventory_summary(prepared.inventory))
        out += named or ["the inventory changed (durations, faults or other details)"]
    if not out:
        now = _timeless(plan_to_json(prepared.plan))
        kept = _timeless({k: v for k, v in saved.items() if k != "saved_plan"})
        if json.loads(json.dumps(now, default=str)) != kept:
            made_by = meta.get("made_by")
            out.append(f"the plan made now differs from the saved one (it was made by "
                       f"nsxt-upgrade {made_by}, this is {__version__})"
                       if made_by not in (None, __version__) else
                       "the plan made now differs from the saved one (the file was edited "
                       "by hand, or made by another nsxt-upgrade version)"
                       if made_by is None else
                       "the plan made now differs from the saved one")
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
          plan_path: Path, site: Path | None = None) -> None:
    """Refuse (exit 4) to run a saved plan that no longer matches, naming why."""
    found = differences(saved, prepared, playbook_path, site, plan_path)
    if found:
        raise RefusedError(
            f"{plan_path} no longer matches what it was made from:\n  " + "\n  ".join(found)
            + f"\nmake a new plan with `nsxt-upgrade plan {playbook_path} --out {plan_path}` "
            "and review it"
        )


@dataclasses.dataclass(frozen=True)
class ForRun:
    """What ``run --plan`` plans with, and the check of the plan made now."""

    playbook: Path
    acks: list[str]
    #: ``--matrix`` as given, else the one the plan was saved with
    site: Path | None
    matches: Callable[[Prepared], None]
    #: the saved plan, when its estimates hold for the run (:func:`reusable`): the run
    #: takes them instead of driving the engine again; None: estimate afresh
    estimates: Mapping[str, Any] | None = None


def for_run(plan_path: Path, playbook: Path | None, acks: Sequence[str],
            site: Path | None = None) -> ForRun:
    """``run --plan``: the playbook, acknowledgements and site matrix to plan with, and
    the check that the plan made now matches the saved one."""
    saved = load_saved(plan_path)
    meta = saved["saved_plan"]
    recorded = Path(meta["playbook_path"])
    if playbook is not None and playbook.resolve() != recorded:
        raise InputError(f"{plan_path} was made from {recorded}, not {playbook}; leave "
                         "PLAYBOOK out to run the saved plan")
    merged = list(dict.fromkeys([*meta["acks"], *acks]))
    if site is None and meta.get("matrix"):
        site = Path(meta["matrix"])
    chosen = site

    def matches(prepared: Prepared) -> None:
        check(saved, prepared, recorded, plan_path, chosen)

    return ForRun(recorded, merged, site, matches, saved if reusable(saved) else None)


def reusable(saved: Mapping[str, Any]) -> bool:
    """True when the saved plan's estimates are the ones estimating again would give, once
    :func:`check` found its inputs unchanged: this nsxt-upgrade version wrote it, its own
    fingerprint vouches that it was not edited, and it has no maintenance window (whose
    estimate waits for the windows from when the run starts, not from when it was saved).
    """
    meta = saved["saved_plan"]
    return (meta.get("made_by") == __version__ and "document" in meta["fingerprints"]
            and "window" not in saved)
