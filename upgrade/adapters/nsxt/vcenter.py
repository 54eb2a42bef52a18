"""What the ``nsxt`` adapter needs from vCenter, as a protocol.

:class:`upgrade.adapters.vsphere.client.VSphereClient` satisfies it; the adapter does
not import pyVmomi itself.  What vCenter holds comes back as core model types in one
:class:`~upgrade.adapters.vsphere.model.VCenterInventory` (a module without pyVmomi).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from upgrade.adapters.vsphere.model import VCenterInventory
from upgrade.core.engine.outcome import OpStatus

__all__ = ["MaintenanceClient", "VCenterConnect", "VCenterInventory"]


@runtime_checkable
class MaintenanceClient(Protocol):
    """What the adapter needs from vCenter
    (:class:`~upgrade.adapters.vsphere.client.VSphereClient`)."""

    async def inventory(self) -> VCenterInventory: ...
    async def start_enter_maintenance(self, host: str, timeout_s: int) -> None: ...
    async def maintenance_status(self, host: str) -> OpStatus: ...
    async def start_evacuate(self, host: str, moves: list[tuple[str, str]]) -> None: ...
    async def evacuate_status(self, host: str, moves: list[tuple[str, str]]) -> OpStatus: ...
    async def start_restore(self, host: str, moves: list[tuple[str, str]]) -> None: ...
    async def restore_status(self, host: str, moves: list[tuple[str, str]]) -> OpStatus: ...
    async def start_exit_maintenance(self, host: str) -> None: ...
    async def exit_status(self, host: str) -> OpStatus: ...
    async def close(self) -> None: ...


#: an async function that connects to vCenter (e.g. ``lambda: VSphereClient.connect(...)``)
VCenterConnect = Callable[[], Awaitable[MaintenanceClient]]


if TYPE_CHECKING:
    from upgrade.adapters.vsphere.client import VSphereClient

    def _conforms(client: VSphereClient) -> MaintenanceClient:
        return client  # mypy checks that the vSphere client fits the protocol
