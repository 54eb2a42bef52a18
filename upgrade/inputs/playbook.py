"""Load and validate a playbook (DESIGN section 4), and the inventory it names."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from upgrade.core.model import (
    Bundle,
    Canary,
    Compatibility,
    HostGroupSpec,
    HostSettings,
    Inventory,
    InventorySpec,
    Mode,
    OnError,
    Playbook,
    Timeouts,
    UnitKind,
    UpgradeMode,
)
from upgrade.errors import FileError
from upgrade.inputs.inventory import load_inventory, seconds
from upgrade.inputs.maintenance import read_window
from upgrade.inputs.yamlio import (
    NAME_PATTERN,
    NAME_RULE,
    MapReader,
    Where,
    as_id,
    entries,
    load_yaml,
)

#: the product's limits: at most 5 host groups at once, 5 hosts per group at once
PRODUCT_MAX_PARALLEL = 5
ADAPTERS = ("simulated", "nsxt")

_TOP = (
    "name", "target_version", "bundle", "inventory", "compatibility", "prechecks", "hosts",
    "edges", "controllers", "manager", "on_error", "retries", "timeouts", "window",
    "canary", "max_fail_percentage",
)
_HOSTS = (
    "mode", "max_parallel", "max_parallel_groups", "upgrade_mode",
    "pause_after_each_group", "groups", "restore_vm_placement",
)
_INVENTORY = ("adapter", "source", "manager", "vcenter", "ca_bundle", "insecure")
_COMPAT = ("pks", "opsman", "matrix", "strict", "opsman_url", "opsman_ca_bundle")


@dataclass(frozen=True, slots=True)
class Loaded:
    """A validated playbook with its inventory (None for adapters that discover it)."""

    playbook: Playbook
    inventory: Inventory | None
    path: Path
    #: ``compatibility.opsman_url`` (and its CA bundle): PKS and Ops Manager versions are
    #: read from Ops Manager (:mod:`upgrade.prepare.reported`) instead of typed
    opsman_url: OpsmanUrl | None = None


@dataclass(frozen=True, slots=True)
class OpsmanUrl:
    """Where the playbook's Ops Manager answers: ``compatibility: {opsman_url: ...}``."""

    url: str
    ca_bundle: Path | None
    where: Where


def load_playbook(path: Path) -> Playbook:
    """Read and validate ``path`` on its own (no cross-checks against an inventory)."""
    return _read(path)[0]


def load(path: Path, inventory: Inventory | None = None) -> Loaded:
    """Read the playbook and, for the simulated adapter, its inventory; cross-check both.

    With ``inventory`` (a run's copy in its state directory) that one is cross-checked
    instead and the playbook's inventory file is not read (nor parsed a second time).
    """
    playbook, group_at = _read(path)
    opsman_url = _opsman_url(path) if "opsman_url" in group_at else None
    if inventory is not None:
        if playbook.inventory.adapter == "simulated":
            check_against_inventory(playbook, inventory, path)
        return Loaded(playbook, inventory, path, opsman_url)
    if playbook.inventory.adapter == "simulated":
        assert playbook.inventory.source is not None
        source = path.parent / playbook.inventory.source
        if not source.is_file():
            problem = "is not a regular file" if source.exists() else "does not exist"
            raise group_at["inventory.source"].error(
                f"inventory file {source} {problem} (paths are relative to the playbook)"
            )
        inventory = load_inventory(source)
        check_against_inventory(playbook, inventory, path)
    return Loaded(playbook, inventory, path, opsman_url)


def _opsman_url(path: Path) -> OpsmanUrl | None:
    """``compatibility.opsman_url`` and ``opsman_ca_bundle`` (already validated by _read)."""
    c = MapReader(load_yaml(path), _TOP, "the playbook").map("compatibility", _COMPAT)
    url = c.str("opsman_url")
    if url is None:
        return None
    ca = c.str("opsman_ca_bundle")
    return OpsmanUrl(url, path.parent / ca if ca else None, c.at("opsman_url"))


def check_against_inventory(playbook: Playbook, inventory: Inventory, path: Path) -> None:
    """Every host named in ``groups`` exists in the inventory and is named once."""
    if playbook.hosts.groups is None:
        return
    known = {h.id for h in inventory.hosts}
    placed: dict[str, str] = {}
    for group in playbook.hosts.groups:
        positions = group.positions or ((1, 1),) * len(group.hosts)
        for host, (line, col) in zip(group.hosts, positions, strict=True):
            if host not in known:
                raise FileError(path, line, col, _not_a_host(host, group.name, inventory))
            if host in placed and placed[host] == group.name:
                raise FileError(path, line, col,
                                f"host {host!r} is listed twice in group {group.name!r}")
            if host in placed:
                raise FileError(path, line, col,
                                f"host {host!r} is in two groups: {placed[host]!r} and "
                                f"{group.name!r}; a host belongs to one group")
            placed[host] = group.name


def _not_a_host(unit: str, group: str, inventory: Inventory) -> str:
    """Why ``unit`` cannot be in host group ``group``: another kind of unit, or unknown."""
    kind = inventory.units().get(unit)
    if kind is None:
        return f"host {unit!r} in group {group!r} is not in the inventory"
    where = ""
    if kind is UnitKind.EDGE:
        cluster = next(ec.name for ec in inventory.edge_clusters if unit in ec.edges)
        where = f" (of edge cluster {cluster!r})"
    return (f"{unit!r} in host group {group!r} is {_article(kind.value)} {kind.value}{where} "
            f"in the inventory, not a host: host groups list ESXi/KVM hosts only; "
            f"{kind.value}s are upgraded in their own phase")


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _read(path: Path) -> tuple[Playbook, dict[str, Where]]:
    root = MapReader(load_yaml(path), _TOP, "the playbook")
    at: dict[str, Where] = {}
    name = as_id(root.require("name"), "name", NAME_PATTERN, NAME_RULE)
    target = root.version("target_version", required=True)
    assert target is not None

    b = root.map("bundle", ("path", "url", "sha256"), required=True)
    sha_at = b.at("sha256") if b.has("sha256") else None
    bundle = Bundle(b.str("path"), b.str("url"), b.str("sha256"),
                    (sha_at.line, sha_at.column) if sha_at else None)
    if bool(bundle.path) == bool(bundle.url):
        raise b.where.error("bundle needs exactly one of path (a local .mub file) or url")
    if bundle.path:
        _check_bundle_file(path.parent / bundle.path, b.at("path"))
    if bundle.sha256 is not None and not _is_sha256(bundle.sha256):
        raise b.at("sha256").error("sha256 must be 64 hexadecimal characters (what "
                                    "`sha256sum BUNDLE` prints first)")

    inv = root.map("inventory", _INVENTORY, required=True)
    adapter = inv.choice("adapter", ADAPTERS, "simulated")
    spec = InventorySpec(
        adapter, inv.str("source"), inv.str("manager"), inv.str("vcenter"),
        inv.str("ca_bundle"), inv.bool("insecure", False),
    )
    at["inventory.source"] = inv.at("source")
    if adapter == "simulated" and not spec.source:
        raise inv.where.error("the simulated adapter needs source: <inventory file>")
    if adapter == "nsxt" and not spec.manager:
        raise inv.where.error("the nsxt adapter needs manager: https://<nsx manager>")
    if spec.ca_bundle and not (path.parent / spec.ca_bundle).is_file():
        raise inv.at("ca_bundle").error(f"CA bundle {path.parent / spec.ca_bundle} does not exist")

    c = root.map("compatibility", _COMPAT)
    if c.has("opsman_url"):
        at["opsman_url"] = _check_opsman_url(c, path.parent)
    compat = Compatibility(
        c.version("pks"), c.version("opsman"), c.str("matrix"), c.bool("strict", False)
    )
    if compat.matrix and not (path.parent / compat.matrix).is_file():
        raise c.at("matrix").error(
            f"compatibility matrix file {path.parent / compat.matrix} does not exist "
            "(paths are relative to the playbook)"
        )
    pre = root.map("prechecks", ("acknowledge",))
    acknowledge = tuple(a for a, _ in pre.id_list("acknowledge"))

    h = root.map("hosts", _HOSTS)
    limit = PRODUCT_MAX_PARALLEL
    groups: list[HostGroupSpec] | None = None
    if h.list("groups"):  # absent, null or []: one group per cluster
        groups = []
        names: set[str] = set()
        for g in entries(h.list("groups"), ("name", "hosts"), "a host group"):
            members = g.id_list("hosts")
            if not members:
                raise g.where.error("a host group needs at least one host")
            gname = g.id("name")
            if gname in names:
                raise g.at("name").error(f"host group {gname!r} is named twice")
            names.add(gname)
            groups.append(HostGroupSpec(
                gname, tuple(x for x, _ in members), tuple((w.line, w.column) for _, w in members)
            ))
    hosts = HostSettings(
        mode=Mode(h.choice("mode", ("serial", "parallel"), "serial")),
        max_parallel=h.int("max_parallel", limit, low=1, high=limit),
        max_parallel_groups=h.int("max_parallel_groups", limit, low=1, high=limit),
        upgrade_mode=UpgradeMode(h.choice("upgrade_mode", ("maintenance", "in_place"),
                                          "maintenance")),
        pause_after_each_group=h.bool("pause_after_each_group", False),
        groups=tuple(groups) if groups is not None else None,
        restore_vm_placement=h.bool("restore_vm_placement", False),
    )
    edges = root.map("edges", ("mode",))
    root.map("controllers", ())
    root.map("manager", ())
    t = root.map("timeouts", tuple(Timeouts.__dataclass_fields__))
    timeouts = Timeouts(**{k: (seconds(node, f"timeouts.{k}", low=1)
                               if (node := t.get(k)) is not None and node.value is not None
                               else None)
                           for k in Timeouts.__dataclass_fields__})
    playbook = Playbook(
        name=name,
        target_version=target,
        bundle=bundle,
        inventory=spec,
        compatibility=compat,
        acknowledge=acknowledge,
        hosts=hosts,
        edges_mode=Mode(edges.choice("mode", ("serial", "parallel"), "parallel")),
        on_error=OnError(root.choice("on_error", ("pause", "abort"), "pause")),
        retries=root.int("retries", 2, low=0, high=10),
        timeouts=timeouts,
        window=read_window(root),
        canary=_canary(root),
        max_fail_hosts_percent=root.map("max_fail_percentage", ("hosts",)).int(
            "hosts", 0, low=0, high=100),
        path=str(path),
    )
    return playbook, at


def _check_opsman_url(c: MapReader, base: Path) -> Where:
    """``opsman_url`` is an https URL, its CA bundle exists; where it is written."""
    url = c.str("opsman_url") or ""
    if not url.startswith(("https://", "http://")):
        raise c.at("opsman_url").error(f"opsman_url must be https://<ops manager>, found {url!r}")
    ca = c.str("opsman_ca_bundle")
    if ca is not None and not (base / ca).is_file():
        raise c.at("opsman_ca_bundle").error(f"CA bundle {base / ca} does not exist")
    return c.at("opsman_url")


def _canary(root: MapReader) -> Canary | None:
    """``canary: {hosts: N, then: pause}`` or ``{hosts: N, watch_s: S}``."""
    node = root.get("canary")
    if node is None or node.value is None:
        return None
    c = root.map("canary", ("hosts", "then", "watch_s"))
    if not c.has("hosts"):
        raise c.where.error("canary needs hosts: N (how many hosts go first, alone)")
    hosts = c.int("hosts", 1, low=1, high=100_000)
    if c.has("then") and c.has("watch_s"):
        raise c.at("watch_s").error("canary takes either then: pause or watch_s: SECONDS, "
                                    "not both")
    watch = c.get("watch_s")
    if watch is not None:
        return Canary(hosts, seconds(watch, "canary.watch_s", low=1))
    c.choice("then", ("pause",), "pause")
    return Canary(hosts)


def _check_bundle_file(bundle: Path, where: Where) -> None:
    if bundle.is_dir():
        raise where.error(f"bundle path {bundle} is a directory, not a file: name the .mub "
                          "file itself (paths are relative to the playbook)")
    if bundle.exists() and not bundle.is_file():
        raise where.error(f"bundle path {bundle} is not a regular file: name the .mub file")
    if not bundle.is_file():
        raise where.error(f"bundle file {bundle} does not exist "
                          "(paths are relative to the playbook)")


def _is_sha256(text: str) -> bool:
    return len(text) == 64 and all(ch in "0123456789abcdefABCDEF" for ch in text)
