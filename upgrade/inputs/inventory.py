"""Load and validate a simulated inventory file (DESIGN section 4)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from upgrade.core.model import (
    MAX_SECONDS,
    Cluster,
    Drs,
    Durations,
    EdgeCluster,
    Fault,
    FaultKind,
    FaultOp,
    Finding,
    Host,
    Inventory,
    Severity,
    Vm,
)
from upgrade.core.versions import Version
from upgrade.inputs.yamlio import (
    ID_PATTERN,
    MapReader,
    Node,
    Where,
    as_id,
    as_int,
    as_str,
    as_version,
    entries,
    load_yaml,
)

_TOP = ("nsx", "compute", "durations", "health", "faults", "seed")
_NSX = ("version", "manager", "controllers", "edge_clusters")
_DURATIONS = tuple(Durations.__dataclass_fields__)

#: from NSX-T 2.4 the NSX Controller is merged into the NSX Manager (VMware's 2.5 upgrade
#: guide, Upgrade Management Plane; upgrade/compat/flows.yaml): a 2.4+ site has none
CONTROLLERS_MERGED_IN = Version.parse("2.4")


def load_inventory(path: Path, discovered: bool = False) -> Inventory:
    """Read ``path``; every problem is a ``FileError`` naming line and column.

    Ids must match :data:`~upgrade.inputs.yamlio.ID_PATTERN`.  ``discovered=True`` is for
    the copy a run keeps of what a real manager reported (``dump_inventory``): its
    names are the manager's, taken as they are (and escaped when shown).
    """
    root = MapReader(load_yaml(path, strict_text=not discovered), _TOP, "the inventory")
    ident: Callable[[Node, str], str] = as_str if discovered else as_id

    def one(m: MapReader, key: str, what: str) -> str:
        return ident(m.require(key), what)

    # where each unit id (and VM id) was given, as its node: a Where is made only for a
    # message (a 100,000-host inventory would hold 300,000 of them; issue 23 item 4)
    seen: dict[str, Node | Where] = {}

    def claim(unit: str, at: Node | Where) -> None:
        if unit in seen:
            raise _where(at).error(
                f"unit id {unit!r} is used twice (first on line {_where(seen[unit]).line}); "
                "every host, edge, controller and manager needs its own id"
            )
        seen[unit] = at

    nsx = root.map("nsx", _NSX, required=True)
    version = nsx.version("version", required=True)
    assert version is not None
    manager_node = nsx.get("manager")
    manager = ident(manager_node, "manager id") if manager_node is not None \
        and manager_node.value is not None else None
    if not manager:
        raise nsx.where.error("the inventory has no manager: add nsx.manager: <manager id>")
    claim(manager, nsx.at("manager"))
    versions: dict[str, Version] = {}
    controllers = _units(nsx.list("controllers"), "a controller", versions, ident)
    if not controllers and version < CONTROLLERS_MERGED_IN:
        raise nsx.at("controllers").error(
            "the inventory has no controllers: list them in nsx.controllers"
        )
    for ctrl, where in controllers:
        claim(ctrl, where)
    edge_clusters: list[EdgeCluster] = []
    ec_names: set[str] = set()
    for ec in entries(nsx.list("edge_clusters"), ("name", "edges"), "an edge cluster"):
        ec_name = one(ec, "name", "edge cluster name")
        if ec_name in ec_names:
            raise ec.at("name").error(f"edge cluster {ec_name!r} is listed twice")
        ec_names.add(ec_name)
        edges = _units(ec.list("edges"), "an edge", versions, ident)
        for edge, where in edges:
            claim(edge, where)
        edge_clusters.append(EdgeCluster(ec_name, tuple(e for e, _ in edges)))

    compute = root.map("compute", ("clusters",))
    clusters: list[Cluster] = []
    cluster_names: set[str] = set()
    hosts: list[Host] = []
    vm_seen: dict[str, Node] = {}
    for cl in entries(compute.list("clusters"), ("name", "drs", "hosts"), "a cluster"):
        name = one(cl, "name", "cluster name")
        if name in cluster_names:
            raise cl.at("name").error(f"cluster {name!r} is listed twice")
        cluster_names.add(name)
        drs = Drs(cl.choice("drs", tuple(d.value for d in Drs), Drs.FULLY_AUTOMATED.value))
        host_nodes = cl.list("hosts")
        own_hosts = _usual_hosts(host_nodes, name, seen, vm_seen, ident)
        if own_hosts is None:  # read host by host: every check in its order, first error
            own_hosts = []
            for host_node in host_nodes:
                host_id, id_node, items = _host_id(host_node, ident)
                claim(host_id, id_node)
                if (own := items.get("version")) is not None:
                    versions[host_id] = as_version(own, "version")
                own_hosts.append(Host(host_id, name, _host_vms(items, vm_seen, ident)))
        hosts += own_hosts
        clusters.append(Cluster(name, drs, tuple(h.id for h in own_hosts)))

    dur = root.map("durations", _DURATIONS)
    durations = Durations(**{k: seconds(node, f"durations.{k}", low=0)
                             if (node := dur.get(k)) is not None and node.value is not None
                             else getattr(Durations(), k) for k in _DURATIONS})

    health = root.map("health", ("warnings", "errors"))
    warnings = tuple(_finding(n, Severity.WARNING, ident) for n in health.list("warnings"))
    errors = tuple(_finding(n, Severity.ERROR, ident) for n in health.list("errors"))

    faults = []
    for f in entries(root.list("faults"), ("unit", "op", "kind", "times"), "a fault"):
        unit = one(f, "unit", "fault unit")
        if unit not in seen and unit not in ("bundle", "coordinator", "system"):
            raise f.at("unit").error(
                f"fault names unit {unit!r}, which the inventory does not have "
                "(use a unit id, or bundle, coordinator or system)"
            )
        op = FaultOp(f.choice("op", tuple(o.value for o in FaultOp), FaultOp.UPGRADE.value))
        kind = FaultKind(f.choice("kind", tuple(k.value for k in FaultKind), "fail"))
        faults.append(Fault(unit, op, kind, f.int("times", 1, low=1)))

    seed_node = root.get("seed")
    seed = as_int(seed_node, "seed", low=0) if seed_node is not None else 0
    return Inventory(
        version=version,
        manager=manager,
        controllers=tuple(c for c, _ in controllers),
        edge_clusters=tuple(edge_clusters),
        clusters=tuple(clusters),
        hosts=tuple(hosts),
        durations=durations,
        warnings=warnings,
        errors=errors,
        faults=tuple(faults),
        seed=seed,
        unit_versions=tuple(sorted((u, v) for u, v in versions.items() if v != version)),
    )


def _units(nodes: list[Node], what: str, versions: dict[str, Version],
           ident: Callable[[Node, str], str]) -> list[tuple[str, Node | Where]]:
    """Unit ids given as ``id`` or ``{id, version}`` (a unit not at the system's version)."""
    out: list[tuple[str, Node | Where]] = []
    for node in nodes:
        if isinstance(node.value, dict):
            m = MapReader(node, ("id", "version"), what)
            unit = ident(m.require("id"), f"{what} id")
            if (own := m.version("version")) is not None:
                versions[unit] = own
            out.append((unit, m.at("id")))
        else:
            out.append((ident(node, f"{what} id"), node))
    return out


def seconds(node: Node, what: str, low: int) -> int:
    """A duration or timeout: a whole number of seconds from ``low`` to :data:`MAX_SECONDS`."""
    value = as_int(node, what, low=low)
    if value > MAX_SECONDS:
        raise node.where.error(f"{what} must be at most {MAX_SECONDS} seconds (7 days), "
                               f"found {value}")
    return value


_HOST_KEYS = ("id", "vms", "version")


def _host_id(node: Node, ident: Callable[[Node, str], str]
             ) -> tuple[str, Node, dict[str, Node]]:
    """A host entry's id and its node, checked as ``MapReader`` checks them (same checks,
    same order, same first error): an inventory holds 100,000 hosts (issue 23 item 4), so
    the usual shape takes a path without a reader object or a call per value."""
    items = node.value
    if type(items) is not dict or not all(key in _HOST_KEYS for key in items):
        items = MapReader(node, _HOST_KEYS, "a host").items  # raises the reader's error
    id_node = items.get("id")
    if id_node is None:
        raise node.where.error("missing required key 'id'")
    host_id = id_node.value
    if type(host_id) is not str or (ident is as_id and ID_PATTERN.fullmatch(host_id) is None):
        host_id = ident(id_node, "host id")  # not an id: raises its error
    return host_id, id_node, items


def _usual_hosts(nodes: list[Node], cluster: str, seen: dict[str, Node | Where],
                 vm_seen: dict[str, Node], ident: Callable[[Node, str], str]
                 ) -> list[Host] | None:
    """A cluster's hosts when every entry is the usual ``{id: ID, vms: [VM ids]}`` with
    new, valid ids; None, with nothing recorded, otherwise (then each entry is read
    alone, and the first error is the one to report).

    An inventory holds 100,000 hosts and 200,000 VMs (issue 23 item 4): the ids are
    checked a cluster at a time by C loops (``map``, ``set``) instead of one by one.
    """
    host_ids: list[Any] = []  # ids once checked below
    id_nodes: list[Node] = []
    vm_lists: list[list[Node]] = []
    for node in nodes:
        items = node.value
        if type(items) is not dict or len(items) != 2:
            return None
        id_node, vms_node = items.get("id"), items.get("vms")
        if id_node is None or vms_node is None or type(vms_node.value) is not list:
            return None
        host_ids.append(id_node.value)
        id_nodes.append(id_node)
        vm_lists.append(vms_node.value)
    vm_nodes = [vm_node for vms in vm_lists for vm_node in vms]
    vm_ids: list[Any] = [vm_node.value for vm_node in vm_nodes]
    if not (set(map(type, host_ids)) <= {str} and set(map(type, vm_ids)) <= {str}
            and len(set(host_ids)) == len(host_ids) and seen.keys().isdisjoint(host_ids)
            and len(set(vm_ids)) == len(vm_ids) and vm_seen.keys().isdisjoint(vm_ids)):
        return None
    if ident is as_id and not (all(map(ID_PATTERN.fullmatch, host_ids))
                               and all(map(ID_PATTERN.fullmatch, vm_ids))):
        return None
    seen.update(zip(host_ids, id_nodes, strict=True))
    vm_seen.update(zip(vm_ids, vm_nodes, strict=True))
    vms = list(map(Vm, vm_ids))
    hosts = []
    start = 0
    for host_id, own in zip(host_ids, vm_lists, strict=True):  # each host takes its VMs' slice
        end = start + len(own)
        hosts.append(Host(host_id, cluster, tuple(vms[start:end])))
        start = end
    return hosts


def _host_vms(items: dict[str, Node], seen: dict[str, Node],
              ident: Callable[[Node, str], str]) -> tuple[Vm, ...]:
    """A host entry's ``vms`` (``items``: the entry; see :func:`_host_id`): plain ids are
    taken in place, anything else (a mapping, a bad or repeated id) goes through :func:`_vm`."""
    vms_node = items.get("vms")
    if vms_node is None or vms_node.value is None:
        return ()
    vm_nodes = vms_node.value
    if type(vm_nodes) is not list:
        raise vms_node.where.error(f"vms must be a list, found {vms_node.kind}")
    check = ID_PATTERN.fullmatch if ident is as_id else None
    vms = []
    for vm_node in vm_nodes:
        vm_id = vm_node.value
        if type(vm_id) is not str or vm_id in seen or (check and check(vm_id) is None):
            vms.append(_vm(vm_node, seen, ident))
            continue
        seen[vm_id] = vm_node
        vms.append(Vm(vm_id))
    return tuple(vms)


def _vm(node: Node, seen: dict[str, Node], ident: Callable[[Node, str], str]) -> Vm:
    if isinstance(node.value, dict):
        m = MapReader(node, ("id", "powered_on"), "a VM")
        vm = Vm(ident(m.require("id"), "a VM id"), m.bool("powered_on", True))
    else:
        vm = Vm(ident(node, "a VM id"))
    if vm.id in seen:
        raise node.where.error(f"VM {vm.id!r} is listed twice (first on line "
                               f"{seen[vm.id].where.line})")
    seen[vm.id] = node
    return vm


def _where(at: Node | Where) -> Where:
    return at if isinstance(at, Where) else at.where


def _finding(node: Node, severity: Severity, ident: Callable[[Node, str], str]) -> Finding:
    m = MapReader(node, ("id", "unit", "message"), f"a health {severity.value}")
    given = m.get("unit")
    unit = ident(given, "finding unit") if given is not None and given.value is not None else None
    return Finding(ident(m.require("id"), "finding id"), severity, m.str("message") or "", unit)


def dump_inventory(inventory: Inventory) -> str:
    """``inventory`` in the simulated-inventory file format (loads back equal)."""
    import yaml  # local: only runs that discover their inventory need it

    hosts = inventory.host_map
    own = {u: str(v) for u, v in inventory.unit_versions}

    def unit(ident: str) -> str | dict[str, str]:
        return {"id": ident, "version": own[ident]} if ident in own else ident

    def host(ident: str) -> dict[str, Any]:
        entry: dict[str, Any] = {"id": ident, "vms": [
            vm.id if vm.powered_on else {"id": vm.id, "powered_on": False}
            for vm in hosts[ident].vms]}
        if ident in own:
            entry["version"] = own[ident]
        return entry

    data = {
        "nsx": {
            "version": str(inventory.version),
            "manager": inventory.manager,
            "controllers": [unit(c) for c in inventory.controllers],
            "edge_clusters": [{"name": ec.name, "edges": [unit(e) for e in ec.edges]}
                              for ec in inventory.edge_clusters],
        },
        "compute": {"clusters": [
            {"name": c.name, "drs": c.drs.value, "hosts": [host(h) for h in c.hosts]}
            for c in inventory.clusters]},
        "durations": {k: getattr(inventory.durations, k) for k in _DURATIONS},
        "health": {
            "warnings": [{"id": w.id, "unit": w.unit, "message": w.message}
                         if w.unit else {"id": w.id, "message": w.message}
                         for w in inventory.warnings],
            "errors": [{"id": e.id, "unit": e.unit, "message": e.message}
                       if e.unit else {"id": e.id, "message": e.message}
                       for e in inventory.errors],
        },
        "faults": [{"unit": f.unit, "op": f.op.value, "kind": f.kind.value, "times": f.times}
                   for f in inventory.faults],
        "seed": inventory.seed,
    }
    # libyaml's emitter writes the very same text as PyYAML's for printable ASCII (and
    # four times faster); other text (a manager's names) keeps PyYAML's own escapes
    fast = getattr(yaml, "CSafeDumper", None) if _printable_ascii(data) else None
    text: str = yaml.dump(data, Dumper=fast or yaml.SafeDumper, sort_keys=False,
                          default_flow_style=None)
    return text


def _printable_ascii(data: object) -> bool:
    """True when every string in ``data`` (keys too) is printable ASCII."""
    if isinstance(data, str):
        return data.isascii() and data.isprintable()
    if isinstance(data, dict):
        return all(_printable_ascii(k) and _printable_ascii(v) for k, v in data.items())
    if isinstance(data, list):
        return all(_printable_ascii(item) for item in data)
    return True
