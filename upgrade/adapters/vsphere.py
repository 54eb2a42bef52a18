"""vCenter client for maintenance mode and vMotion evacuation, over pyVmomi.

Every operation is *start + status*: ``start_*`` only starts vCenter tasks and is
idempotent (what is already done or already in flight is not started again), and the
``*_status`` functions read the world (the host's maintenance flag, where each VM runs,
vCenter's recent tasks) rather than remembered task ids, so an orchestrator restarted
after a crash can ask where things stand.

pyVmomi blocks, so each call runs in a worker thread (``asyncio.to_thread``). pyVmomi and
socket errors are turned into :class:`~upgrade.errors.AdapterError` (or
:class:`~upgrade.errors.TransientAdapterError` when trying again may help) at this
boundary; the password never appears in a message or a log.
"""

from __future__ import annotations

import asyncio
import http.client
import ssl
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, Self, TypeVar
from urllib.parse import urlsplit

import structlog
from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim, vmodl

from upgrade.errors import AdapterError, TransientAdapterError
from upgrade.model import Drs

__all__ = ["ClusterInfo", "HostInfo", "OpStatus", "VSphereClient", "VmInfo"]

log = structlog.get_logger(__name__)
T = TypeVar("T")
# pyVmomi's stubs leave these untyped; mypy --strict wants them said to be Any.
PC: Any = vmodl.query.PropertyCollector
_smart_connect: Callable[..., Any] = SmartConnect
_relocate_spec: Callable[..., Any] = vim.vm.RelocateSpec
_ENTER = "hostsystem.entermaintenancemode"
_EXIT = "hostsystem.exitmaintenancemode"
_VMOTION = ("virtualmachine.relocate", "virtualmachine.migrate")
_IN_FLIGHT = ("queued", "running")


@dataclass(frozen=True, slots=True)
class OpStatus:
    """Where an operation stands, read from vCenter; ``detail`` says why in words."""

    state: Literal["done", "running", "failed", "not_started"]
    detail: str = ""


@dataclass(frozen=True, slots=True)
class VmInfo:
    """A virtual machine as vCenter sees it."""

    name: str
    powered_on: bool


@dataclass(frozen=True, slots=True)
class HostInfo:
    """A host, its maintenance flag and the VMs that run on it."""

    name: str
    in_maintenance: bool
    vms: tuple[VmInfo, ...]


@dataclass(frozen=True, slots=True)
class ClusterInfo:
    """A compute cluster with its DRS automation level and hosts."""

    name: str
    drs: Drs
    hosts: tuple[HostInfo, ...]


@dataclass(frozen=True, slots=True)
class _Obj:
    """One managed object and the properties read for it."""

    ref: Any
    props: dict[str, Any]

    @property
    def id(self) -> str:
        return str(self.ref._moId)

    def get(self, name: str) -> Any:
        return self.props.get(name)


@dataclass(frozen=True, slots=True)
class _Task:
    entity: str
    kind: str
    state: str
    order: tuple[float, str]
    progress: int | None
    error: str


def _moid(ref: Any) -> str:
    return "" if ref is None else str(ref._moId)


def _fault_text(exc: BaseException) -> str:
    msg = getattr(exc, "msg", None) or getattr(exc, "localizedMessage", None)
    return str(msg) if msg else type(exc).__name__


def _ssl_context(ca_bundle: str | None, insecure: bool) -> ssl.SSLContext:
    # Always an explicit context: given none, pyVmomi skips verification for localhost.
    if insecure:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    try:
        return ssl.create_default_context(cafile=ca_bundle)
    except (OSError, ssl.SSLError) as exc:
        raise AdapterError(f"cannot read the vCenter CA bundle {ca_bundle}: {exc}") from exc


class VSphereClient:
    """An async client of one vCenter; make one with :meth:`connect`."""

    def __init__(self, si: Any, where: str, username: str, password: str) -> None:
        self._si = si
        self._where = where
        self._username = username
        self.__password = password  # kept only to log in again when the session expires

    @classmethod
    async def connect(
        cls,
        url: str,
        username: str,
        password: str,
        *,
        ca_bundle: str | None = None,
        insecure: bool = False,
        timeout_s: float = 60.0,
    ) -> VSphereClient:
        """Log in to the vCenter at ``url`` (``https://vc.example[:port][/sdk]``).

        TLS certificates are verified (against ``ca_bundle`` or the system's CAs) unless
        ``insecure``. Raises AdapterError for a refused login or a bad certificate, and
        TransientAdapterError when vCenter cannot be reached.
        """
        parts = urlsplit(url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise AdapterError(f"not a vCenter URL: {parts.scheme}://{parts.hostname or ''}")
        where = f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        context = _ssl_context(ca_bundle, insecure)

        def login() -> Any:
            try:
                return _smart_connect(
                    protocol=parts.scheme,
                    host=parts.hostname,
                    port=parts.port or (443 if parts.scheme == "https" else 80),
                    path=parts.path.rstrip("/") or "/sdk",
                    user=username,
                    pwd=password,
                    sslContext=context,
                    httpConnectionTimeout=timeout_s,
                )
            except vim.fault.InvalidLogin as exc:
                raise AdapterError(
                    f"vCenter {where} refused the login of user {username!r}: "
                    "wrong user name or password (VSPHERE_USERNAME / VSPHERE_PASSWORD)"
                ) from exc
            except Exception as exc:
                raise _translate(exc, where, "connecting") from exc

        si = await asyncio.to_thread(login)
        log.info("vsphere.connected", vcenter=where, user=username)
        return cls(si, where, username, password)

    async def close(self) -> None:
        """Log out; closing twice is harmless."""
        si, self._si = self._si, None
        if si is not None:
            try:
                await asyncio.to_thread(Disconnect, si)
            except Exception as exc:  # logging out of a vCenter that went away is fine
                log.warning("vsphere.logout_failed", vcenter=self._where, error=_fault_text(exc))

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # -- reading ----------------------------------------------------------------------------

    async def inventory(self) -> list[ClusterInfo]:
        """Every compute cluster with its DRS level, hosts and the VMs running on them."""
        return await self._run("reading the inventory", self._inventory)

    async def find_host(self, name: str) -> HostInfo:
        """The host called ``name``; AdapterError naming it when vCenter has no such host."""
        return await self._run(f"finding host {name}", lambda: self._host_info(name))

    def _inventory(self) -> list[ClusterInfo]:
        clusters = self._collect(vim.ClusterComputeResource, ["name", "configurationEx"])
        hosts = self._collect(vim.HostSystem, ["name", "runtime.inMaintenanceMode", "parent"])
        vms = self._vms()
        result = []
        for cluster in sorted(clusters, key=lambda c: str(c.get("name"))):
            drs = getattr(cluster.get("configurationEx"), "drsConfig", None)
            members = [h for h in hosts if _moid(h.get("parent")) == cluster.id]
            result.append(
                ClusterInfo(
                    name=str(cluster.get("name")),
                    drs=_drs(drs),
                    hosts=tuple(
                        self._describe(h, vms) for h in sorted(members, key=lambda h: h.get("name"))
                    ),
                )
            )
        return result

    def _host_info(self, name: str) -> HostInfo:
        return self._describe(self._host(name), self._vms())

    @staticmethod
    def _describe(host: _Obj, vms: list[_Obj]) -> HostInfo:
        on_host = sorted(
            (
                VmInfo(str(v.get("name")), v.get("runtime.powerState") == "poweredOn")
                for v in vms
                if _moid(v.get("runtime.host")) == host.id
            ),
            key=lambda v: v.name,
        )
        return HostInfo(
            str(host.get("name")), bool(host.get("runtime.inMaintenanceMode")), tuple(on_host)
        )

    def _host(self, name: str) -> _Obj:
        found = [
            h
            for h in self._collect(vim.HostSystem, ["name", "runtime.inMaintenanceMode", "parent"])
            if h.get("name") == name
        ]
        if not found:
            raise AdapterError(f"host {name!r} is not in the inventory of vCenter {self._where}")
        return found[0]

    def _vms(self) -> list[_Obj]:
        return self._collect(vim.VirtualMachine, ["name", "runtime.host", "runtime.powerState"])

    def _collect(self, kind: Any, props: list[str]) -> list[_Obj]:
        """Read ``props`` of every object of ``kind`` in one property-collector pass."""
        content = self._si.content
        view = content.viewManager.CreateContainerView(content.rootFolder, [kind], True)
        try:
            traverse = PC.TraversalSpec(
                name="view", path="view", skip=False, type=vim.view.ContainerView
            )
            spec = PC.FilterSpec(
                objectSet=[PC.ObjectSpec(obj=view, skip=True, selectSet=[traverse])],
                propSet=[PC.PropertySpec(type=kind, pathSet=props)],
            )
            return self._retrieve(spec)
        finally:
            view.Destroy()

    def _retrieve(self, spec: Any) -> list[_Obj]:
        collector = self._si.content.propertyCollector
        found: list[_Obj] = []
        result = collector.RetrievePropertiesEx([spec], PC.RetrieveOptions())
        while result is not None:
            found.extend(
                _Obj(o.obj, {p.name: p.val for p in o.propSet or ()}) for o in result.objects
            )
            if not result.token:
                break
            result = collector.ContinueRetrievePropertiesEx(result.token)
        return found

    def _tasks(self, entities: Iterable[Any], kinds: tuple[str, ...]) -> list[_Task]:
        """vCenter's recent tasks of ``kinds`` on ``entities``, oldest first."""
        entities = list(entities)
        ids = {_moid(e) for e in entities}
        sources: list[tuple[Any, Any]] = [(self._si.content.taskManager, vim.TaskManager)]
        sources += [(e, vim.ManagedEntity) for e in entities]
        spec = PC.FilterSpec(
            objectSet=[
                PC.ObjectSpec(
                    obj=obj,
                    skip=True,
                    selectSet=[
                        PC.TraversalSpec(name="tasks", path="recentTask", skip=False, type=kind)
                    ],
                )
                for obj, kind in sources
            ],
            propSet=[PC.PropertySpec(type=vim.Task, pathSet=["info"])],
        )
        tasks: dict[str, _Task] = {}
        for obj in self._retrieve(spec):
            info = obj.get("info")
            kind = str(info.descriptionId or "").lower()
            if _moid(info.entity) in ids and kind.startswith(kinds):
                queued = info.queueTime.timestamp() if info.queueTime else 0.0
                tasks[obj.id] = _Task(
                    _moid(info.entity),
                    kind,
                    str(info.state),
                    (queued, info.key),
                    info.progress,
                    _fault_text(info.error) if info.error is not None else "",
                )
        return sorted(tasks.values(), key=lambda t: t.order)

    def _task_status(self, host: _Obj, kind: str, doing: str) -> OpStatus | None:
        tasks = self._tasks([host.ref], (kind,))
        if not tasks:
            return None
        last = tasks[-1]
        name = host.get("name")
        if last.state in _IN_FLIGHT:
            percent = f" ({last.progress}%)" if last.progress is not None else ""
            return OpStatus("running", f"{doing} host {name}: task {last.state}{percent}")
        if last.state == "error":
            return OpStatus("failed", f"{doing} host {name} failed: {last.error}")
        return None

    # -- maintenance mode -------------------------------------------------------------------

    async def start_enter_maintenance(self, host: str, timeout_s: int) -> None:
        """Start putting ``host`` into maintenance mode; vCenter fails the task after
        ``timeout_s`` seconds. Nothing is started when the host is already in maintenance
        mode or a task putting it there is in flight."""

        def start() -> None:
            h = self._host(host)
            if h.get("runtime.inMaintenanceMode") or self._in_flight(h.ref, _ENTER):
                return
            h.ref.EnterMaintenanceMode_Task(timeout=int(timeout_s))
            log.info("vsphere.enter_maintenance_started", host=host, timeout_s=timeout_s)

        await self._run(f"entering maintenance mode on host {host}", start)

    async def maintenance_status(self, host: str) -> OpStatus:
        """done once ``host`` is in maintenance mode; running while a task to get it there
        is in flight; failed when the last such task failed; else not_started."""

        def status() -> OpStatus:
            h = self._host(host)
            if h.get("runtime.inMaintenanceMode"):
                return OpStatus("done", f"host {host} is in maintenance mode")
            found = self._task_status(h, _ENTER, "entering maintenance mode on")
            return found or OpStatus("not_started", f"host {host} is not in maintenance mode")

        return await self._run(f"reading the maintenance mode of host {host}", status)

    async def start_exit_maintenance(self, host: str) -> None:
        """Start taking ``host`` out of maintenance mode (no-op when it is not in
        maintenance mode or a task taking it out is in flight)."""

        def start() -> None:
            h = self._host(host)
            if not h.get("runtime.inMaintenanceMode") or self._in_flight(h.ref, _EXIT):
                return
            h.ref.ExitMaintenanceMode_Task(timeout=0)
            log.info("vsphere.exit_maintenance_started", host=host)

        await self._run(f"exiting maintenance mode on host {host}", start)

    async def exit_status(self, host: str) -> OpStatus:
        """done once ``host`` is out of maintenance mode; running while a task taking it
        out is in flight; failed when the last such task failed; else not_started."""

        def status() -> OpStatus:
            h = self._host(host)
            if not h.get("runtime.inMaintenanceMode"):
                return OpStatus("done", f"host {host} is not in maintenance mode")
            found = self._task_status(h, _EXIT, "exiting maintenance mode on")
            return found or OpStatus("not_started", f"host {host} is in maintenance mode")

        return await self._run(f"reading the maintenance mode of host {host}", status)

    def _in_flight(self, ref: Any, *kinds: str) -> bool:
        return any(t.state in _IN_FLIGHT for t in self._tasks([ref], kinds))

    # -- evacuation ------------------------------------------------------------------------

    async def start_evacuate(self, host: str, moves: list[tuple[str, str]]) -> None:
        """Start a vMotion for each ``(vm, destination host)`` in ``moves`` whose VM is
        neither at its destination already nor being moved. Every move is checked first
        (VM and destination exist, destination is another host of the same cluster and is
        not in maintenance mode); a bad move starts nothing."""

        def start() -> None:
            source = self._host(host)
            hosts = {
                h.get("name"): h
                for h in self._collect(
                    vim.HostSystem, ["name", "runtime.inMaintenanceMode", "parent"]
                )
            }
            vms = self._vms()
            todo = []
            for vm_name, dest_name in moves:
                vm = _one_vm(vms, vm_name, self._where)
                dest = hosts.get(dest_name)
                if dest is None:
                    raise AdapterError(
                        f"cannot move VM {vm_name} to host {dest_name!r}: "
                        f"not in the inventory of vCenter {self._where}"
                    )
                if _moid(vm.get("runtime.host")) == dest.id:
                    continue
                if dest.id == source.id or _moid(dest.get("parent")) != _moid(source.get("parent")):
                    raise AdapterError(
                        f"cannot move VM {vm_name} to host {dest_name}: "
                        f"not another host of the cluster of host {host}"
                    )
                if dest.get("runtime.inMaintenanceMode"):
                    raise AdapterError(
                        f"cannot move VM {vm_name} to host {dest_name}: it is in maintenance mode"
                    )
                todo.append((vm, dest))
            for vm, dest in todo:
                if not self._in_flight(vm.ref, *_VMOTION):
                    vm.ref.RelocateVM_Task(spec=_relocate_spec(host=dest.ref))
                    log.info(
                        "vsphere.vmotion_started",
                        vm=vm.get("name"),
                        source=host,
                        destination=dest.get("name"),
                    )

        await self._run(f"evacuating host {host}", start)

    async def evacuate_status(self, host: str, moves: list[tuple[str, str]]) -> OpStatus:
        """done when every VM of ``moves`` runs on its destination and no powered-on VM is
        left on ``host``; running while vMotions are in flight; failed when one failed or
        a powered-on VM no move covers stays; else not_started."""

        def status() -> OpStatus:
            source = self._host(host)
            vms = self._vms()
            hosts = {h.id: h.get("name") for h in self._collect(vim.HostSystem, ["name"])}
            pending = []
            for vm_name, dest_name in moves:
                try:
                    vm = _one_vm(vms, vm_name, self._where)
                except AdapterError as exc:
                    return OpStatus("failed", str(exc))
                if hosts.get(_moid(vm.get("runtime.host"))) != dest_name:
                    pending.append(vm)
            left = sorted(
                str(v.get("name"))
                for v in vms
                if _moid(v.get("runtime.host")) == source.id
                and v.get("runtime.powerState") == "poweredOn"
            )
            if not pending and not left:
                return OpStatus("done", f"no powered-on VM is left on host {host}")
            tasks = self._tasks([v.ref for v in pending], _VMOTION)
            names = {v.id: v.get("name") for v in pending}
            moving = sorted(names[t.entity] for t in tasks if t.state in _IN_FLIGHT)
            if moving:
                return OpStatus("running", f"moving VMs off host {host}: {', '.join(moving)}")
            last = {t.entity: t for t in tasks}
            failed = [
                f"{names[i]}: {t.error}" for i, t in sorted(last.items()) if t.state == "error"
            ]
            if failed:
                return OpStatus("failed", f"moving VMs off host {host} failed: {'; '.join(failed)}")
            if not pending:
                return OpStatus(
                    "failed",
                    f"powered-on VMs no move covers are still on host {host}: {', '.join(left)}",
                )
            return OpStatus(
                "not_started",
                "not yet moved: " + ", ".join(sorted(str(v.get("name")) for v in pending)),
            )

        return await self._run(f"reading the evacuation of host {host}", status)

    # -- the boundary ----------------------------------------------------------------------

    async def _run(self, doing: str, fn: Callable[[], T]) -> T:
        return await asyncio.to_thread(self._guarded, doing, fn)

    def _guarded(self, doing: str, fn: Callable[[], T]) -> T:
        if self._si is None:
            raise AdapterError(f"{doing}: the vCenter {self._where} client is closed")
        try:
            try:
                return fn()
            except vim.fault.NotAuthenticated:  # the session expired: log in once more
                self._si.content.sessionManager.Login(self._username, self.__password)
                log.info("vsphere.session_renewed", vcenter=self._where)
                return fn()
        except AdapterError:
            raise
        except vim.fault.InvalidLogin as exc:
            raise AdapterError(
                f"{doing}: vCenter {self._where} no longer accepts the login "
                f"of user {self._username!r}"
            ) from exc
        except Exception as exc:
            raise _translate(exc, self._where, doing) from exc


def _drs(config: Any) -> Drs:
    if config is None or not config.enabled:
        return Drs.OFF
    if config.defaultVmBehavior == "fullyAutomated":
        return Drs.FULLY_AUTOMATED
    return Drs.MANUAL


def _one_vm(vms: list[_Obj], name: str, where: str) -> _Obj:
    found = [v for v in vms if v.get("name") == name]
    if len(found) != 1:
        problem = "is not in the inventory" if not found else f"names {len(found)} VMs in"
        raise AdapterError(f"VM {name!r} {problem} of vCenter {where}")
    return found[0]


def _translate(exc: Exception, where: str, doing: str) -> AdapterError:
    """The AdapterError that tells an operator what went wrong, without secrets."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return AdapterError(
            f"{doing}: the TLS certificate of vCenter {where} cannot be verified "
            f"({exc.verify_message}); give its CA as ca_bundle, or set insecure: true"
        )
    if isinstance(exc, ssl.SSLError):
        return AdapterError(f"{doing}: TLS with vCenter {where} failed: {exc.reason or exc}")
    if isinstance(exc, OSError):
        return TransientAdapterError(
            f"{doing}: cannot reach vCenter {where}: {exc.strerror or exc}"
        )
    if isinstance(exc, http.client.HTTPException):
        return TransientAdapterError(
            f"{doing}: vCenter {where} answered: {exc or type(exc).__name__}"
        )
    if isinstance(exc, vim.fault.NotAuthenticated):
        return TransientAdapterError(f"{doing}: the session with vCenter {where} expired")
    if isinstance(exc, (vmodl.MethodFault, vmodl.RuntimeFault)):
        return AdapterError(f"{doing}: vCenter {where} said: {_fault_text(exc)}")
    return AdapterError(f"{doing}: unexpected {type(exc).__name__} from vCenter {where}: {exc}")
