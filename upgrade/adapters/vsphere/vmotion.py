"""vMotions: evacuating a host, and moving its VMs back once it is upgraded.

A move is ``(vm name, destination host name)``.  Starting is idempotent (a VM on its
destination, or being moved, is not moved again) and checks every move first, so one
bad move starts nothing.  Blocking pyVmomi calls: run them inside
:meth:`~upgrade.adapters.vsphere.session.Session.run`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import structlog
from pyVmomi import vim

from upgrade.adapters.vsphere.collector import VMOTION, Collector, Obj, moid, one_vm
from upgrade.core.engine.messages import OpState
from upgrade.core.engine.outcome import OpStatus
from upgrade.errors import AdapterError, TransientAdapterError

__all__ = ["evacuate_status", "restore_status", "start_evacuate", "start_restore"]

log = structlog.get_logger(__name__)
# pyVmomi's stubs leave it untyped; mypy --strict wants it declared Any.
_relocate_spec: Callable[..., Any] = vim.vm.RelocateSpec
Moves = Sequence[tuple[str, str]]


def start_evacuate(vcenter: Collector, host: str, moves: Moves) -> None:
    """Start a vMotion for each move whose VM is neither on its destination nor being
    moved. Every move is checked first (the VM and destination exist; the destination is
    another host of the cluster, not in maintenance mode)."""
    where = vcenter.where
    source = vcenter.host(host)
    hosts = {h.get("name"): h for h in vcenter.hosts()}
    vms, todo, cluster = vcenter.vms(), [], moid(source.get("parent"))
    for vm_name, dest_name in moves:
        vm, dest = one_vm(vms, vm_name, where), hosts.get(dest_name)
        if dest is None:
            why = f"it is not in the inventory of vCenter {where}"
        elif dest.id == source.id or moid(dest.get("parent")) != cluster:
            why = f"it is not another host of the cluster of host {host}"
        elif moid(vm.get("runtime.host")) == dest.id:
            continue  # already there
        elif dest.get("runtime.inMaintenanceMode"):
            why = "it is in maintenance mode"
        else:
            todo.append((vm, dest))
            continue
        raise AdapterError(f"cannot move VM {vm_name} to host {dest_name}: {why}")
    for vm, dest in todo:
        _relocate(vcenter, vm, dest, source=host, vm=vm.get("name"),
                  destination=dest.get("name"))


def evacuate_status(vcenter: Collector, host: str, moves: Moves) -> OpStatus:
    """done when every VM of ``moves`` runs on its destination and no powered-on VM is
    left on ``host``; running while vMotions are in flight; failed when one failed, or
    when powered-on VMs that no move covers stay; else not_started."""
    source, vms = vcenter.host(host), vcenter.vms()
    names = {h.id: h.get("name") for h in vcenter.hosts(["name"])}
    try:
        pending = [
            vm for vm, dest in ((one_vm(vms, v, vcenter.where), d) for v, d in moves)
            if names.get(moid(vm.get("runtime.host"))) != dest
        ]  # fmt: skip
    except AdapterError as exc:
        return OpStatus(OpState.FAILED, str(exc))
    left = sorted(
        str(v.get("name"))
        for v in vms
        if moid(v.get("runtime.host")) == source.id
        and v.get("runtime.powerState") == "poweredOn"
    )
    if not pending and not left:
        return OpStatus(OpState.DONE, f"no powered-on VM is left on host {host}")
    moving = _in_flight_or_failed(vcenter, pending, f"moving VMs off host {host}")
    if moving is not None:
        return moving
    if not pending:
        what = f"powered-on VMs that no move covers are still on host {host}"
        return OpStatus(OpState.FAILED, f"{what}: {', '.join(left)}")
    return OpStatus(OpState.NOT_STARTED, f"not moved yet: {_names(pending)}")


def start_restore(vcenter: Collector, host: str, moves: Moves) -> None:
    """Start a vMotion back to ``host`` for each move whose VM is elsewhere and not being
    moved.  Checked first: every destination is ``host``; the VM is in ``host``'s cluster;
    ``host`` is not in maintenance mode (TransientAdapterError: it will be)."""
    home, vms, todo = vcenter.host(host), vcenter.vms(), []
    cluster = moid(home.get("parent"))
    parents = {h.id: moid(h.get("parent")) for h in vcenter.hosts(["parent"])}
    for vm_name, dest_name in moves:
        vm = one_vm(vms, vm_name, vcenter.where)
        if dest_name != host:
            why = f"it is not {host}, the host this move brings VMs back to"
        elif parents.get(moid(vm.get("runtime.host"))) != cluster:
            why = f"the VM is not in the cluster of host {host}"
        elif moid(vm.get("runtime.host")) == home.id:
            continue  # already home
        elif home.get("runtime.inMaintenanceMode"):
            raise TransientAdapterError(f"host {host} is in maintenance mode; it "
                                        "takes its VMs back once out of it")
        else:
            todo.append(vm)
            continue
        raise AdapterError(f"cannot move VM {vm_name} back to host {dest_name}: {why}")
    for vm in todo:
        _relocate(vcenter, vm, home, destination=host, vm=vm.get("name"), back_home=True)


def restore_status(vcenter: Collector, host: str, moves: Moves) -> OpStatus:
    """done when every VM of ``moves`` runs on ``host``; running while vMotions are in
    flight; failed when one failed; else not_started."""
    home, vms = vcenter.host(host), vcenter.vms()
    try:
        away = [vm for vm in (one_vm(vms, v, vcenter.where) for v, _ in moves)
                if moid(vm.get("runtime.host")) != home.id]
    except AdapterError as exc:
        return OpStatus(OpState.FAILED, str(exc))
    if not away:
        return OpStatus(OpState.DONE, f"every VM moved off host {host} is back on it")
    moving = _in_flight_or_failed(vcenter, away, f"moving VMs back to host {host}")
    if moving is not None:
        return moving
    return OpStatus(OpState.NOT_STARTED, f"not back yet: {_names(away)}")


def _relocate(vcenter: Collector, moved: Obj, dest: Obj, /, **logged: Any) -> None:
    """vMotion VM ``moved`` to host ``dest`` unless a vMotion of it is in flight already."""
    if not vcenter.in_flight(moved.ref, *VMOTION):
        moved.ref.RelocateVM_Task(spec=_relocate_spec(host=dest.ref))
        log.info("vsphere.vmotion_started", **logged)


def _in_flight_or_failed(vcenter: Collector, vms: list[Obj], doing: str) -> OpStatus | None:
    """running while the last vMotion of one of ``vms`` is in flight, failed when one
    failed, else None: what ``doing`` (e.g. "moving VMs off host h") stands at."""
    last = {t.entity: t for t in vcenter.tasks([v.ref for v in vms], VMOTION)}
    vm_name = {v.id: str(v.get("name")) for v in vms}
    moving = sorted(vm_name[i] for i, t in last.items() if t.state is OpState.RUNNING)
    failed = sorted(f"{vm_name[i]}: {t.error}" for i, t in last.items() if t.error)
    if moving:
        return OpStatus(OpState.RUNNING, f"{doing}: {', '.join(moving)}")
    if failed:
        return OpStatus(OpState.FAILED, f"{doing} failed: {'; '.join(failed)}")
    return None


def _names(vms: list[Obj]) -> str:
    return ", ".join(sorted({v.id: str(v.get("name")) for v in vms}.values()))
