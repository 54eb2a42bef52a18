"""What the ``nsxt`` adapter needs from vCenter, as a protocol.

:class:`upgrade.adapters.vsphere.client.VSphereClient` satisfies it; the adapter does
not import pyVmomi itself.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from upgrade.core.engine.outcome import OpState
from upgrade.core.model import Drs


class VmLike(Protocol):
    """A VM: its name and power state."""

    @property
    def name(self) -> str: ...
    @property
    def powered_on(self) -> bool: ...


class HostLike(Protocol):
    """A host: its name, maintenance flag and VMs."""

    @property
    def name(self) -> str: ...
    @property
    def in_maintenance(self) -> bool: ...
    @property
    def vms(self) -> Sequence[VmLike]: ...


class ClusterLike(Protocol):
    """A compute cluster: its name, DRS level and hosts."""

    @property
    def name(self) -> str: ...
    @property
    def drs(self) -> Drs: ...
    @property
    def hosts(self) -> Sequence[HostLike]: ...


class StatusLike(Protocol):
    """Where a vCenter operation stands."""

    @property
    def state(self) -> OpState: ...
    @property
    def detail(self) -> str: ...


@runtime_checkable
class MaintenanceClient(Protocol):
    """What the adapter needs from vCenter
    (:class:`~upgrade.adapters.vsphere.client.VSphereClient`)."""

    async def inventory(self) -> Sequence[ClusterLike]: ...
    async def start_enter_maintenance(self, host: str, timeout_s: int) -> None: ...
    async def maintenance_status(self, host: str) -> StatusLike: ...
    async def start_evacuate(self, host: str, moves: list[tuple[str, str]]) -> None: ...
    async def evacuate_status(self, host: str, moves: list[tuple[str, str]]) -> StatusLike: ...
    async def start_restore(self, host: str, moves: list[tuple[str, str]]) -> None: ...
    async def restore_status(self, host: str, moves: list[tuple[str, str]]) -> StatusLike: ...
    async def start_exit_maintenance(self, host: str) -> None: ...
    async def exit_status(self, host: str) -> StatusLike: ...
    async def close(self) -> None: ...



#: an async function that connects to vCenter (e.g. ``lambda: VSphereClient.connect(...)``)
VCenterConnect = Callable[[], Awaitable[MaintenanceClient]]


if TYPE_CHECKING:
    from upgrade.adapters.vsphere.client import VSphereClient

    def _conforms(client: VSphereClient) -> MaintenanceClient:
        return client  # mypy checks that the vSphere client fits the protocol
