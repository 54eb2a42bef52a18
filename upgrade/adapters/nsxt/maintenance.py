"""Maintenance mode, evacuation and VM placement restored for the ``nsxt`` adapter.

With a vCenter (a :class:`~upgrade.adapters.nsxt.vcenter.MaintenanceClient`) these
operations go through it, and the moves of each evacuation and restore are remembered
in the state directory so their status can be read after a restart.  Without one they
are done at once: the NSX-T Upgrade Coordinator puts hosts in maintenance mode itself.
"""

from __future__ import annotations

from upgrade.adapters.nsxt.bundle import AdapterMemory
from upgrade.adapters.nsxt.vcenter import MaintenanceClient, VCenterConnect
from upgrade.clock import Clock
from upgrade.core.engine.messages import OpState
from upgrade.core.engine.outcome import OpStatus
from upgrade.core.model import Op

__all__ = ["BY_COORDINATOR", "MAINTENANCE_OPS", "Maintenance"]

#: what the maintenance operations report when no vCenter is configured
BY_COORDINATOR = ("maintenance mode is handled by the NSX-T Upgrade Coordinator "
                  "(no vCenter configured)")
#: the operations this module runs
MAINTENANCE_OPS = (Op.ENTER_MAINTENANCE, Op.EVACUATE, Op.EXIT_MAINTENANCE, Op.RESTORE)


class Maintenance:
    """The maintenance operations, through vCenter when one is given."""

    def __init__(self, vsphere: MaintenanceClient | VCenterConnect | None,
                 memory: AdapterMemory, clock: Clock | None, timeout_s: int) -> None:
        """``vsphere``: a connected client, or an async function that connects one when
        first needed; ``memory`` keeps the moves; ``clock`` dates what is done at once;
        vCenter fails entering maintenance mode after ``timeout_s`` seconds."""
        self._source = vsphere
        self._vsphere: MaintenanceClient | None = None
        self.memory = memory
        self.clock = clock
        self.timeout_s = timeout_s

    async def vcenter(self) -> MaintenanceClient | None:
        """The vSphere client, connected on first use when given as a connect function."""
        source = self._source
        if self._vsphere is None and source is not None:
            if isinstance(source, MaintenanceClient):
                self._vsphere = source
            else:
                self._vsphere = await source()
        return self._vsphere

    async def start(self, op: Op, host: str, moves: list[tuple[str, str]]) -> float | None:
        """Start ``op`` on ``host``; without vCenter it is done now (the clock's time)."""
        vsphere = await self.vcenter()
        if vsphere is None:
            return self.clock.now() if self.clock is not None else None
        if op is Op.ENTER_MAINTENANCE:
            await vsphere.start_enter_maintenance(host, self.timeout_s)
        elif op is Op.EVACUATE:
            self.memory.remember(moves={**self.memory.data.get("moves", {}), host: moves})
            await vsphere.start_evacuate(host, moves)
        elif op is Op.RESTORE:
            self.memory.remember(restores={**self.memory.data.get("restores", {}), host: moves})
            await vsphere.start_restore(host, moves)
        else:
            await vsphere.start_exit_maintenance(host)
        return None

    async def status(self, op: Op, host: str) -> OpStatus:
        """How ``op`` on ``host`` stands, as vCenter says (with the remembered moves)."""
        vsphere = await self.vcenter()
        if vsphere is None:
            return OpStatus(OpState.DONE, BY_COORDINATOR)
        if op is Op.ENTER_MAINTENANCE:
            result = await vsphere.maintenance_status(host)
        elif op is Op.EVACUATE:
            moves = [(str(v), str(d)) for v, d in self.memory.data.get("moves", {}).get(host, [])]
            result = await vsphere.evacuate_status(host, moves)
        elif op is Op.RESTORE:
            back = [(str(v), str(d))
                    for v, d in self.memory.data.get("restores", {}).get(host, [])]
            result = await vsphere.restore_status(host, back)
        else:
            result = await vsphere.exit_status(host)
        return result

    async def close(self) -> None:
        """Close the vSphere client (also one given connected and never used)."""
        source = self._source
        vsphere = self._vsphere or (source if isinstance(source, MaintenanceClient) else None)
        self._vsphere, self._source = None, None
        if vsphere is not None:
            await vsphere.close()
