"""vCenter client for maintenance mode and vMotion evacuation, over pyVmomi.

Operations are *start + status*: ``start_*`` is idempotent (what is done or in flight is
not started again) and ``*_status`` reads the world (maintenance flags, where VMs run,
vCenter's recent tasks), never remembered task ids, so a restarted orchestrator can ask.

The pieces, one job each: :mod:`.session` (login, TLS, renewal, the error boundary),
:mod:`.collector` (property-collector reads), :mod:`.inventory` (clusters, hosts and VMs
as core model types, see :mod:`.model`), :mod:`.maintenance` and :mod:`.vmotion`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Self, TypeVar

from upgrade.adapters.vsphere import maintenance, vmotion
from upgrade.adapters.vsphere.collector import Collector
from upgrade.adapters.vsphere.inventory import read_inventory
from upgrade.adapters.vsphere.model import VCenterInventory
from upgrade.adapters.vsphere.session import Session
from upgrade.core.engine.outcome import OpStatus

__all__ = ["OpStatus", "VCenterInventory", "VSphereClient"]

T = TypeVar("T")


class VSphereClient:
    """An async client of one vCenter; make one with :meth:`connect`."""

    def __init__(self, session: Session) -> None:
        self.session = session

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
        """A client of the vCenter at ``url``, logged in by :meth:`Session.login` (which
        says how the certificate is checked and what each failure raises)."""
        return cls(await Session.login(url, username, password, ca_bundle=ca_bundle,
                                       insecure=insecure, timeout_s=timeout_s))

    async def close(self) -> None:
        """Log out; closing twice is harmless."""
        await self.session.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def _run(self, doing: str, fn: Callable[[Collector], T]) -> T:
        where = self.session.where
        return await self.session.run(doing, lambda si: fn(Collector(si, where)))

    # -- reading ----------------------------------------------------------------------------

    async def inventory(self) -> VCenterInventory:
        """Every compute cluster with its DRS level, its hosts and their VMs, and which of
        those hosts are in maintenance mode (see :class:`VCenterInventory`)."""
        return await self._run("reading the inventory", read_inventory)

    # -- maintenance mode -------------------------------------------------------------------

    async def start_enter_maintenance(self, host: str, timeout_s: int) -> None:
        """Start putting ``host`` into maintenance mode (vCenter fails the task after
        ``timeout_s`` seconds); no-op when it is there or a task putting it there is in
        flight. VMs are not moved here: see :meth:`start_evacuate`."""
        await self._run(f"entering maintenance mode on host {host}",
                        lambda vc: maintenance.start_enter(vc, host, timeout_s))

    async def maintenance_status(self, host: str) -> OpStatus:
        """done once ``host`` is in maintenance mode, running while a task putting it there
        is in flight, failed when the last such task failed, else not_started."""
        return await self._run(f"reading the maintenance mode of host {host}",
                               lambda vc: maintenance.status(vc, host, entering=True))

    async def start_exit_maintenance(self, host: str) -> None:
        """Start taking ``host`` out of maintenance mode; no-op when it is not in
        maintenance mode or a task taking it out is in flight."""
        await self._run(f"exiting maintenance mode on host {host}",
                        lambda vc: maintenance.start_exit(vc, host))

    async def exit_status(self, host: str) -> OpStatus:
        """done once ``host`` is out of maintenance mode, running while a task taking it out
        is in flight, failed when the last such task failed, else not_started."""
        return await self._run(f"reading the maintenance mode of host {host}",
                               lambda vc: maintenance.status(vc, host, entering=False))

    # -- vMotion: evacuation, and VM placement restored --------------------------------------

    async def start_evacuate(self, host: str, moves: Sequence[tuple[str, str]]) -> None:
        """Start a vMotion for each ``(vm, destination host)`` whose VM is neither on its
        destination nor being moved; one bad move starts nothing (see :mod:`.vmotion`)."""
        await self._run(f"evacuating host {host}",
                        lambda vc: vmotion.start_evacuate(vc, host, moves))

    async def evacuate_status(self, host: str, moves: Sequence[tuple[str, str]]) -> OpStatus:
        """done when every VM of ``moves`` runs on its destination and no powered-on VM is
        left on ``host``; running, failed or not_started otherwise."""
        return await self._run(f"reading the evacuation of host {host}",
                               lambda vc: vmotion.evacuate_status(vc, host, moves))

    async def start_restore(self, host: str, moves: Sequence[tuple[str, str]]) -> None:
        """Start a vMotion back to ``host`` for each ``(vm, host)`` whose VM is elsewhere and
        not being moved; one bad move starts nothing (see :mod:`.vmotion`)."""
        await self._run(f"moving VMs back to host {host}",
                        lambda vc: vmotion.start_restore(vc, host, moves))

    async def restore_status(self, host: str, moves: Sequence[tuple[str, str]]) -> OpStatus:
        """done when every VM of ``moves`` runs on ``host``; running while vMotions are in
        flight; failed when one failed; else not_started."""
        return await self._run(f"reading the VMs moving back to host {host}",
                               lambda vc: vmotion.restore_status(vc, host, moves))
