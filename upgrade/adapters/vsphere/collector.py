"""Reading vCenter through its property collector: hosts, VMs, clusters and recent tasks.

Blocking pyVmomi calls: run them inside :meth:`~upgrade.adapters.vsphere.session.Session.run`.
What is read is the world as it is now (maintenance flags, where VMs run, vCenter's
recent tasks), never remembered task ids, so a restarted orchestrator can ask.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pyVmomi import vim, vmodl

from upgrade.adapters.status_words import StatusWords
from upgrade.adapters.vsphere.session import fault_text
from upgrade.core.engine.messages import OpState
from upgrade.errors import AdapterError

__all__ = ["ENTER", "EXIT", "TASK_STATE", "VMOTION", "Collector", "Obj", "Task", "moid"]

# pyVmomi's stubs leave it untyped; mypy --strict wants it declared Any.
PC: Any = vmodl.query.PropertyCollector
#: task kinds (``descriptionId`` prefixes): maintenance mode in and out, and a vMotion
ENTER, EXIT = "hostsystem.entermaintenancemode", "hostsystem.exitmaintenancemode"
VMOTION = ("virtualmachine.relocate", "virtualmachine.migrate")  # vcsim says relocateVm
#: a task's state (vim.TaskInfo.State: queued, running, success, error) as an OpState: queued
#: or running is in flight.  Unlisted: ended, as a success (a failure is named by the
#: task's error)
TASK_STATE = StatusWords("TaskInfo.State", {
    "queued": OpState.RUNNING,
    "running": OpState.RUNNING,
    "success": OpState.DONE,
    "error": OpState.FAILED,
}, unlisted=OpState.DONE)
_HOST_PROPS = ["name", "runtime.inMaintenanceMode", "parent"]
_VM_PROPS = ["name", "runtime.host", "runtime.powerState"]


@dataclass(frozen=True, slots=True)
class Obj:
    """A managed object and the properties read for it."""

    ref: Any
    props: dict[str, Any]

    @property
    def id(self) -> str:
        """Its managed object id."""
        return moid(self.ref)

    def get(self, name: str) -> Any:
        """The property ``name`` as read (None when it was not)."""
        return self.props.get(name)


@dataclass(frozen=True, slots=True)
class Task:
    """A vCenter task: on which entity, its state, when queued, progress and error."""

    entity: str
    #: what the task's state means for the operation that started it
    state: OpState
    #: the task's state as vCenter says it (``queued``: for messages)
    word: str
    order: tuple[float, str]
    progress: int | None
    error: str


class Collector:
    """Reads of one service instance (``si``) of the vCenter at ``where``."""

    def __init__(self, si: Any, where: str) -> None:
        self._si = si
        self.where = where

    def hosts(self, props: list[str] | None = None) -> list[Obj]:
        """Every host with its name, maintenance flag and parent (or only ``props``)."""
        return self.collect(vim.HostSystem, props or _HOST_PROPS)

    def host(self, name: str) -> Obj:
        """The host called ``name``; AdapterError naming it when vCenter has no such host."""
        for host in self.hosts():
            if host.get("name") == name:
                return host
        raise AdapterError(f"host {name!r} is not in the inventory of vCenter {self.where}")

    def vms(self) -> list[Obj]:
        """Every VM with its name, host and power state."""
        return self.collect(vim.VirtualMachine, _VM_PROPS)

    def clusters(self) -> list[Obj]:
        """Every compute cluster with its name and configuration (DRS)."""
        return self.collect(vim.ClusterComputeResource, ["name", "configurationEx"])

    def collect(self, kind: Any, props: list[str]) -> list[Obj]:
        """``props`` of every object of ``kind``, read in one property-collector pass."""
        content = self._si.content
        view = content.viewManager.CreateContainerView(content.rootFolder, [kind], True)
        try:
            into = PC.TraversalSpec(name="view", path="view", type=vim.view.ContainerView)
            return self._retrieve(
                PC.FilterSpec(
                    objectSet=[PC.ObjectSpec(obj=view, skip=True, selectSet=[into])],
                    propSet=[PC.PropertySpec(type=kind, pathSet=props)],
                )
            )
        finally:
            view.Destroy()

    def _retrieve(self, spec: Any) -> list[Obj]:
        collector = self._si.content.propertyCollector
        found: list[Obj] = []
        result = collector.RetrievePropertiesEx([spec], PC.RetrieveOptions())
        while result is not None:
            found += [Obj(o.obj, {p.name: p.val for p in o.propSet or ()}) for o in result.objects]
            token = result.token
            result = collector.ContinueRetrievePropertiesEx(token) if token else None
        return found

    def tasks(self, entities: Iterable[Any], kinds: tuple[str, ...]) -> list[Task]:
        """vCenter's recent tasks of ``kinds`` on ``entities``, oldest first.

        Read from the task manager's and the entities' ``recentTask`` lists, which hold
        tasks that are queued, running or recently finished, whoever started them.
        """
        entities = list(entities)
        ids = {moid(e) for e in entities}
        sources: list[tuple[Any, Any]] = [(self._si.content.taskManager, vim.TaskManager)]
        sources += [(e, vim.ManagedEntity) for e in entities]
        objects = [
            PC.ObjectSpec(obj=obj, skip=True, selectSet=[
                PC.TraversalSpec(name=f"t{i}", path="recentTask", type=kind)])
            for i, (obj, kind) in enumerate(sources)
        ]  # fmt: skip
        spec = PC.FilterSpec(
            objectSet=objects, propSet=[PC.PropertySpec(type=vim.Task, pathSet=["info"])]
        )
        tasks: dict[str, Task] = {}
        for task in self._retrieve(spec):
            info = task.get("info")
            entity, kind = moid(info.entity), str(info.descriptionId or "").lower()
            if entity in ids and kind.startswith(kinds):
                queued = info.queueTime.timestamp() if info.queueTime else 0.0
                error = fault_text(info.error) if info.error is not None else ""
                order = (queued, str(info.key))
                word = str(info.state)
                tasks[task.id] = Task(entity, TASK_STATE.read(word), word, order,
                                      info.progress, error)
        return sorted(tasks.values(), key=lambda t: t.order)

    def in_flight(self, ref: Any, *kinds: str) -> bool:
        """True while a task of ``kinds`` on ``ref`` is queued or running."""
        return any(t.state is OpState.RUNNING for t in self.tasks([ref], kinds))


def moid(ref: Any) -> str:
    """The managed object id of ``ref`` ("" for None)."""
    return "" if ref is None else str(ref._moId)


def one_vm(vms: list[Obj], name: str, where: str) -> Obj:
    """The one VM of ``vms`` called ``name``; AdapterError when none or several are."""
    found = [vm for vm in vms if vm.get("name") == name]
    if len(found) != 1:
        problem = "is not in the inventory" if not found else f"names {len(found)} VMs in"
        raise AdapterError(f"VM {name!r} {problem} of vCenter {where}")
    return found[0]
