"""vCenter client for maintenance mode and vMotion evacuation, over pyVmomi.

Operations are *start + status*: ``start_*`` is idempotent (what is done or in flight is
not started again) and ``*_status`` reads the world (maintenance flags, where VMs run,
vCenter's recent tasks), never remembered task ids, so a restarted orchestrator can ask.
Blocking pyVmomi calls run in worker threads; pyVmomi, TLS and socket errors become
AdapterError / TransientAdapterError here, and the password never reaches a message or log.
"""

from __future__ import annotations

import asyncio
import http.client
import ssl
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self, TypeVar
from urllib.parse import urlsplit

import structlog
from pyVim.connect import SmartStubAdapter
from pyVmomi import vim, vmodl

from upgrade.core.engine.outcome import OpStatus
from upgrade.core.model import Drs
from upgrade.errors import AdapterError, TransientAdapterError

__all__ = ["ClusterInfo", "HostInfo", "OpStatus", "VSphereClient", "VmInfo"]

log = structlog.get_logger(__name__)
T = TypeVar("T")
# pyVmomi's stubs leave these untyped; mypy --strict wants them declared Any.
PC: Any = vmodl.query.PropertyCollector
_stub_adapter: Callable[..., Any] = SmartStubAdapter
_service_instance: Callable[..., Any] = vim.ServiceInstance
_relocate_spec: Callable[..., Any] = vim.vm.RelocateSpec
_ENTER, _EXIT = "hostsystem.entermaintenancemode", "hostsystem.exitmaintenancemode"
_VMOTION = ("virtualmachine.relocate", "virtualmachine.migrate")  # vcsim says relocateVm
_IN_FLIGHT = ("queued", "running")
_HOST_PROPS = ["name", "runtime.inMaintenanceMode", "parent"]


@dataclass(frozen=True, slots=True)
class VmInfo:
    """A virtual machine as vCenter sees it."""

    name: str
    powered_on: bool


@dataclass(frozen=True, slots=True)
class HostInfo:
    """A host, its maintenance flag and the VMs that run on it (by ``runtime.host``)."""

    name: str
    in_maintenance: bool
    vms: tuple[VmInfo, ...]


@dataclass(frozen=True, slots=True)
class ClusterInfo:
    """A compute cluster, its DRS automation level and its hosts."""

    name: str
    drs: Drs
    hosts: tuple[HostInfo, ...]


@dataclass(frozen=True, slots=True)
class _Obj:
    """A managed object and the properties read for it."""

    ref: Any
    props: dict[str, Any]

    @property
    def id(self) -> str:
        return _moid(self.ref)

    def get(self, name: str) -> Any:
        return self.props.get(name)


@dataclass(frozen=True, slots=True)
class _Task:
    entity: str
    state: str
    order: tuple[float, str]
    progress: int | None
    error: str


class VSphereClient:
    """An async client of one vCenter; make one with :meth:`connect`."""

    def __init__(self, si: Any, where: str, username: str, password: str) -> None:
        self._si = si
        self._where = where
        self._username = username
        self.__password = password  # only to log in again when the session expires
        self._login_lock = threading.Lock()

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

        Its TLS certificate is verified against ``ca_bundle`` (or the system's CAs) unless
        ``insecure``. A refused login or a bad certificate raises AdapterError; a vCenter
        that cannot be reached raises TransientAdapterError.
        """
        parts = urlsplit(url)
        if parts.scheme != "https" or not parts.hostname:
            raise AdapterError(f"not an https:// vCenter URL: {parts.scheme}://{parts.hostname}")
        where = f"https://{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        if insecure:
            log.warning("vsphere.tls_verification_disabled", vcenter=where)
        context = _ssl_context(ca_bundle, insecure)

        def login() -> Any:
            stub = None
            try:
                stub = _stub_adapter(
                    host=parts.hostname,
                    port=parts.port or 443,
                    path=parts.path.rstrip("/") or "/sdk",
                    sslContext=context,
                    httpConnectionTimeout=timeout_s,
                )
                si = _service_instance("ServiceInstance", stub)
                si.content.sessionManager.Login(username, password, None)
                return si
            except Exception as exc:
                if stub is not None:
                    stub.DropConnections()
                if isinstance(exc, vim.fault.InvalidLogin):
                    raise AdapterError(
                        f"vCenter {where} refused the login of user {username!r}: wrong user "
                        "name or password (VSPHERE_USERNAME / VSPHERE_PASSWORD)"
                    ) from exc
                raise _translate(exc, where, "connecting") from exc

        try:  # the stub's API version probe has no timeout of its own
            si = await asyncio.wait_for(asyncio.to_thread(login), timeout_s)
        except TimeoutError as exc:
            raise TransientAdapterError(
                f"connecting: vCenter {where} did not answer within {timeout_s:g}s"
            ) from exc
        log.info("vsphere.connected", vcenter=where, user=username)
        return cls(si, where, username, password)

    async def close(self) -> None:
        """Log out; closing twice is harmless."""
        si, self._si = self._si, None
        if si is not None:
            try:
                await asyncio.to_thread(_logout, si)
            except Exception as exc:  # a vCenter gone away has logged us out anyway
                log.warning("vsphere.logout_failed", vcenter=self._where, error=_text(exc))

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # -- reading ----------------------------------------------------------------------------

    async def inventory(self) -> list[ClusterInfo]:
        """Every compute cluster with its DRS level, hosts and their VMs, sorted by name."""

        def read() -> list[ClusterInfo]:
            hosts, vms = self._collect(vim.HostSystem, _HOST_PROPS), self._vms()
            result = []
            for cluster in self._collect(vim.ClusterComputeResource, ["name", "configurationEx"]):
                members = [h for h in hosts if _moid(h.get("parent")) == cluster.id]
                drs = getattr(cluster.get("configurationEx"), "drsConfig", None)
                described = sorted((_describe(h, vms) for h in members), key=lambda h: h.name)
                result.append(ClusterInfo(str(cluster.get("name")), _drs(drs), tuple(described)))
            return sorted(result, key=lambda c: c.name)

        return await self._run("reading the inventory", read)

    async def find_host(self, name: str) -> HostInfo:
        """The host called ``name``; AdapterError naming it when vCenter has no such host."""
        return await self._run(
            f"finding host {name}", lambda: _describe(self._host(name), self._vms())
        )

    def _host(self, name: str) -> _Obj:
        for host in self._collect(vim.HostSystem, _HOST_PROPS):
            if host.get("name") == name:
                return host
        raise AdapterError(f"host {name!r} is not in the inventory of vCenter {self._where}")

    def _vms(self) -> list[_Obj]:
        return self._collect(vim.VirtualMachine, ["name", "runtime.host", "runtime.powerState"])

    def _collect(self, kind: Any, props: list[str]) -> list[_Obj]:
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

    def _retrieve(self, spec: Any) -> list[_Obj]:
        collector = self._si.content.propertyCollector
        found: list[_Obj] = []
        result = collector.RetrievePropertiesEx([spec], PC.RetrieveOptions())
        while result is not None:
            found += [_Obj(o.obj, {p.name: p.val for p in o.propSet or ()}) for o in result.objects]
            token = result.token
            result = collector.ContinueRetrievePropertiesEx(token) if token else None
        return found

    def _tasks(self, entities: Iterable[Any], kinds: tuple[str, ...]) -> list[_Task]:
        """vCenter's recent tasks of ``kinds`` on ``entities``, oldest first.

        Read from the task manager's and the entities' ``recentTask`` lists, which hold
        tasks that are queued, running or recently finished, whoever started them.
        """
        entities = list(entities)
        ids = {_moid(e) for e in entities}
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
        tasks: dict[str, _Task] = {}
        for task in self._retrieve(spec):
            info = task.get("info")
            entity, kind = _moid(info.entity), str(info.descriptionId or "").lower()
            if entity in ids and kind.startswith(kinds):
                queued = info.queueTime.timestamp() if info.queueTime else 0.0
                error = _text(info.error) if info.error is not None else ""
                order = (queued, str(info.key))
                tasks[task.id] = _Task(entity, str(info.state), order, info.progress, error)
        return sorted(tasks.values(), key=lambda t: t.order)

    def _in_flight(self, ref: Any, *kinds: str) -> bool:
        return any(t.state in _IN_FLIGHT for t in self._tasks([ref], kinds))

    # -- maintenance mode -------------------------------------------------------------------

    async def start_enter_maintenance(self, host: str, timeout_s: int) -> None:
        """Start putting ``host`` into maintenance mode (vCenter fails the task after
        ``timeout_s`` seconds); no-op when it is there or a task putting it there is in
        flight. VMs are not moved here: see :meth:`start_evacuate`."""

        def start() -> None:
            h = self._host(host)
            if not h.get("runtime.inMaintenanceMode") and not self._in_flight(h.ref, _ENTER):
                h.ref.EnterMaintenanceMode_Task(timeout=int(timeout_s))
                log.info("vsphere.enter_maintenance_started", host=host, timeout_s=timeout_s)

        await self._run(f"entering maintenance mode on host {host}", start)

    async def maintenance_status(self, host: str) -> OpStatus:
        """done once ``host`` is in maintenance mode, running while a task putting it there
        is in flight, failed when the last such task failed, else not_started."""
        return await self._status(host, True, _ENTER, "entering maintenance mode on")

    async def start_exit_maintenance(self, host: str) -> None:
        """Start taking ``host`` out of maintenance mode; no-op when it is not in
        maintenance mode or a task taking it out is in flight."""

        def start() -> None:
            h = self._host(host)
            if h.get("runtime.inMaintenanceMode") and not self._in_flight(h.ref, _EXIT):
                h.ref.ExitMaintenanceMode_Task(timeout=0)
                log.info("vsphere.exit_maintenance_started", host=host)

        await self._run(f"exiting maintenance mode on host {host}", start)

    async def exit_status(self, host: str) -> OpStatus:
        """done once ``host`` is out of maintenance mode, running while a task taking it out
        is in flight, failed when the last such task failed, else not_started."""
        return await self._status(host, False, _EXIT, "exiting maintenance mode on")

    async def _status(self, host: str, target: bool, kind: str, doing: str) -> OpStatus:
        def status() -> OpStatus:
            h = self._host(host)
            where = "in" if h.get("runtime.inMaintenanceMode") else "not in"
            if bool(h.get("runtime.inMaintenanceMode")) == target:
                return OpStatus("done", f"host {host} is {where} maintenance mode")
            tasks = self._tasks([h.ref], (kind,))
            last = tasks[-1] if tasks else None
            if last is not None and last.state in _IN_FLIGHT:
                percent = f" ({last.progress}%)" if last.progress is not None else ""
                return OpStatus("running", f"{doing} host {host}: task {last.state}{percent}")
            if last is not None and last.state == "error":
                return OpStatus("failed", f"{doing} host {host} failed: {last.error}")
            return OpStatus("not_started", f"host {host} is {where} maintenance mode")

        return await self._run(f"reading the maintenance mode of host {host}", status)

    # -- evacuation ------------------------------------------------------------------------

    async def start_evacuate(self, host: str, moves: Sequence[tuple[str, str]]) -> None:
        """Start a vMotion for each ``(vm, destination host)`` whose VM is neither on its
        destination nor being moved. All moves are checked first (the VM and destination
        exist; the destination is another host of the cluster, not in maintenance mode):
        one bad move starts nothing."""

        def start() -> None:
            source = self._host(host)
            hosts = {h.get("name"): h for h in self._collect(vim.HostSystem, _HOST_PROPS)}
            vms, todo, cluster = self._vms(), [], _moid(source.get("parent"))
            for vm_name, dest_name in moves:
                vm, dest = _one_vm(vms, vm_name, self._where), hosts.get(dest_name)
                if dest is None:
                    why = f"it is not in the inventory of vCenter {self._where}"
                elif dest.id == source.id or _moid(dest.get("parent")) != cluster:
                    why = f"it is not another host of the cluster of host {host}"
                elif _moid(vm.get("runtime.host")) == dest.id:
                    continue  # already there
                elif dest.get("runtime.inMaintenanceMode"):
                    why = "it is in maintenance mode"
                else:
                    todo.append((vm, dest))
                    continue
                raise AdapterError(f"cannot move VM {vm_name} to host {dest_name}: {why}")
            for vm, dest in todo:
                if not self._in_flight(vm.ref, *_VMOTION):
                    vm.ref.RelocateVM_Task(spec=_relocate_spec(host=dest.ref))
                    moved = {"vm": vm.get("name"), "destination": dest.get("name")}
                    log.info("vsphere.vmotion_started", source=host, **moved)

        await self._run(f"evacuating host {host}", start)

    async def evacuate_status(self, host: str, moves: Sequence[tuple[str, str]]) -> OpStatus:
        """done when every VM of ``moves`` runs on its destination and no powered-on VM is
        left on ``host``; running while vMotions are in flight; failed when one failed, or
        when powered-on VMs that no move covers stay; else not_started."""

        def status() -> OpStatus:
            source, vms = self._host(host), self._vms()
            names = {h.id: h.get("name") for h in self._collect(vim.HostSystem, ["name"])}
            try:
                pending = [
                    vm for vm, dest in ((_one_vm(vms, v, self._where), d) for v, d in moves)
                    if names.get(_moid(vm.get("runtime.host"))) != dest
                ]  # fmt: skip
            except AdapterError as exc:
                return OpStatus("failed", str(exc))
            left = sorted(
                str(v.get("name"))
                for v in vms
                if _moid(v.get("runtime.host")) == source.id
                and v.get("runtime.powerState") == "poweredOn"
            )
            if not pending and not left:
                return OpStatus("done", f"no powered-on VM is left on host {host}")
            last = {t.entity: t for t in self._tasks([v.ref for v in pending], _VMOTION)}
            vm_name = {v.id: str(v.get("name")) for v in pending}
            moving = sorted(vm_name[i] for i, t in last.items() if t.state in _IN_FLIGHT)
            failed = sorted(f"{vm_name[i]}: {t.error}" for i, t in last.items() if t.error)
            if moving:
                return OpStatus("running", f"moving VMs off host {host}: {', '.join(moving)}")
            if failed:
                return OpStatus("failed", f"moving VMs off host {host} failed: {'; '.join(failed)}")
            if not pending:
                what = f"powered-on VMs that no move covers are still on host {host}"
                return OpStatus("failed", f"{what}: {', '.join(left)}")
            return OpStatus("not_started", f"not moved yet: {', '.join(sorted(vm_name.values()))}")

        return await self._run(f"reading the evacuation of host {host}", status)

    # -- VM placement restored --------------------------------------------------------------

    async def start_restore(self, host: str, moves: Sequence[tuple[str, str]]) -> None:
        """Start a vMotion back to ``host`` for each ``(vm, host)`` whose VM is elsewhere and
        not being moved.  Checked first (one bad move starts nothing): every destination is
        ``host``; the VM is in ``host``'s cluster; ``host`` is not in maintenance mode."""

        def start() -> None:
            home, vms, todo = self._host(host), self._vms(), []
            cluster = _moid(home.get("parent"))
            parents = {h.id: _moid(h.get("parent"))
                       for h in self._collect(vim.HostSystem, ["parent"])}
            for vm_name, dest_name in moves:
                vm = _one_vm(vms, vm_name, self._where)
                if dest_name != host:
                    why = f"it is not {host}, the host this move brings VMs back to"
                elif parents.get(_moid(vm.get("runtime.host"))) != cluster:
                    why = f"the VM is not in the cluster of host {host}"
                elif _moid(vm.get("runtime.host")) == home.id:
                    continue  # already home
                elif home.get("runtime.inMaintenanceMode"):
                    raise TransientAdapterError(f"host {host} is in maintenance mode; it "
                                                "takes its VMs back once out of it")
                else:
                    todo.append(vm)
                    continue
                raise AdapterError(f"cannot move VM {vm_name} back to host {dest_name}: {why}")
            for vm in todo:
                if not self._in_flight(vm.ref, *_VMOTION):
                    vm.ref.RelocateVM_Task(spec=_relocate_spec(host=home.ref))
                    log.info("vsphere.vmotion_started", destination=host,
                             vm=vm.get("name"), back_home=True)

        await self._run(f"moving VMs back to host {host}", start)

    async def restore_status(self, host: str, moves: Sequence[tuple[str, str]]) -> OpStatus:
        """done when every VM of ``moves`` runs on ``host``; running while vMotions are in
        flight; failed when one failed; else not_started."""

        def status() -> OpStatus:
            home, vms = self._host(host), self._vms()
            try:
                away = [vm for vm in (_one_vm(vms, v, self._where) for v, _ in moves)
                        if _moid(vm.get("runtime.host")) != home.id]
            except AdapterError as exc:
                return OpStatus("failed", str(exc))
            if not away:
                return OpStatus("done", f"every VM moved off host {host} is back on it")
            last = {t.entity: t for t in self._tasks([v.ref for v in away], _VMOTION)}
            vm_name = {v.id: str(v.get("name")) for v in away}
            moving = sorted(vm_name[i] for i, t in last.items() if t.state in _IN_FLIGHT)
            failed = sorted(f"{vm_name[i]}: {t.error}" for i, t in last.items() if t.error)
            if moving:
                return OpStatus("running", f"moving VMs back to host {host}: "
                                f"{', '.join(moving)}")
            if failed:
                return OpStatus("failed", f"moving VMs back to host {host} failed: "
                                f"{'; '.join(failed)}")
            return OpStatus("not_started", f"not back yet: {', '.join(sorted(vm_name.values()))}")

        return await self._run(f"reading the VMs moving back to host {host}", status)

    # -- the boundary ----------------------------------------------------------------------

    async def _run(self, doing: str, fn: Callable[[], T]) -> T:
        return await asyncio.to_thread(self._guarded, doing, fn)

    def _guarded(self, doing: str, fn: Callable[[], T]) -> T:
        if self._si is None:
            raise AdapterError(f"{doing}: the client of vCenter {self._where} is closed")
        try:
            try:
                return fn()
            except vim.fault.NotAuthenticated:  # the session expired: log in once more
                with self._login_lock:
                    sessions = self._si.content.sessionManager
                    try:
                        alive = sessions.currentSession is not None
                    except vim.fault.NotAuthenticated:
                        alive = False
                    if not alive:
                        sessions.Login(self._username, self.__password, None)
                        log.info("vsphere.session_renewed", vcenter=self._where)
                return fn()
        except AdapterError:
            raise
        except vim.fault.InvalidLogin as exc:
            raise AdapterError(
                f"{doing}: vCenter {self._where} no longer accepts user {self._username!r}"
            ) from exc
        except Exception as exc:
            raise _translate(exc, self._where, doing) from exc


def _logout(si: Any) -> None:
    try:
        si.content.sessionManager.Logout()
    finally:
        si._stub.DropConnections()


def _moid(ref: Any) -> str:
    return "" if ref is None else str(ref._moId)


def _text(fault: BaseException) -> str:
    msg = getattr(fault, "msg", None) or getattr(fault, "localizedMessage", None)
    return str(msg) if msg else type(fault).__name__


def _ssl_context(ca_bundle: str | None, insecure: bool) -> ssl.SSLContext:
    # Always an explicit context: given none, pyVmomi skips verification for localhost.
    context = ssl.create_default_context()
    if insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif ca_bundle is not None:
        try:
            context = ssl.create_default_context(cafile=ca_bundle)
        except (OSError, ssl.SSLError) as exc:
            raise AdapterError(f"cannot read the vCenter CA bundle {ca_bundle}: {exc}") from exc
    return context


def _describe(host: _Obj, vms: list[_Obj]) -> HostInfo:
    on_host = [
        VmInfo(str(vm.get("name")), vm.get("runtime.powerState") == "poweredOn")
        for vm in vms
        if _moid(vm.get("runtime.host")) == host.id
    ]
    maintenance = bool(host.get("runtime.inMaintenanceMode"))
    return HostInfo(
        str(host.get("name")), maintenance, tuple(sorted(on_host, key=lambda v: v.name))
    )


def _drs(config: Any) -> Drs:
    if config is None or not config.enabled:
        return Drs.OFF
    return Drs.FULLY_AUTOMATED if config.defaultVmBehavior == "fullyAutomated" else Drs.MANUAL


def _one_vm(vms: list[_Obj], name: str, where: str) -> _Obj:
    found = [vm for vm in vms if vm.get("name") == name]
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
        reason = exc.strerror or str(exc) or type(exc).__name__
        return TransientAdapterError(f"{doing}: cannot reach vCenter {where}: {reason}")
    if isinstance(exc, http.client.HTTPException):
        reason = str(exc) or type(exc).__name__
        return TransientAdapterError(f"{doing}: vCenter {where} answered: {reason}")
    if isinstance(exc, vim.fault.NotAuthenticated):
        return TransientAdapterError(f"{doing}: the session with vCenter {where} ended")
    if isinstance(exc, (vmodl.MethodFault, vmodl.RuntimeFault)):
        return AdapterError(f"{doing}: vCenter {where} said: {_text(exc)}")
    return AdapterError(f"{doing}: unexpected {type(exc).__name__} from vCenter {where}: {exc}")
