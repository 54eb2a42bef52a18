"""The upgrades the NSX-T Manager runs: its Upgrade Coordinator, then the upgrade units.

COORDINATOR  EULA acceptance, then ``POST /upgrade?action=upgrade_uc``; its progress from
             ``GET /upgrade/summary`` (``upgrade_coordinator_updated``), or, where the
             manager has it (2.5.1+), ``GET /upgrade/uc-upgrade-status``
UPGRADE      ``POST /upgrade/plan?action=upgrade_selected_units``, never for a unit already
             upgrading or at the target; unit status from its group's
             ``GET /upgrade/upgrade-unit-groups/{group-id}/status`` (VMware's API has no
             status of one unit), one read shared by the units of a group polled within
             :data:`STATUS_FRESH_S` simulated seconds of it (never one asked for before
             the unit's own start was answered)
VERIFY       the unit reports the target version; the manager must also have its
             management cluster ``STABLE`` again (answering is not being ready)
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog

from upgrade.adapters.nsxt.api import UC_STATUS, ManagerApi
from upgrade.adapters.nsxt.bundle import AdapterMemory
from upgrade.adapters.nsxt.http import NsxtClient, nsx_version
from upgrade.adapters.nsxt.status_enums import UC_UPGRADE, UNIT_UPGRADE
from upgrade.clock import Clock
from upgrade.core.engine.messages import OpState
from upgrade.core.engine.outcome import OpStatus
from upgrade.errors import AdapterError

__all__ = ["Upgrades"]

log = structlog.get_logger(__name__)

#: a group's unit statuses asked for at most this many (clock) seconds before a poll answer
#: it: the units of a group upgrade together and are polled within moments of each other,
#: and each read lists every unit of the group (two thirds of the engine's poll interval:
#: 10 s left a rehearsal of 1,000 hosts at 1.25x its ideal, 20 s at 1.13x)
STATUS_FRESH_S = 20.0


def progress_band(percent: Any) -> str:
    """``40-50%``: a unit's progress in tens.  A poll whose answer repeats the previous one
    is not journaled (the engine's quiet polls): a band changes every few polls of an
    upgrade, an exact percentage at every one of them."""
    try:
        value = float(percent)
    except (TypeError, ValueError):
        return "progress unknown"
    low = min(90, max(0, int(value // 10) * 10))
    return f"{low}-{low + 10}%"


class Upgrades:
    """The coordinator's and the units' upgrades on the manager behind ``client``."""

    def __init__(self, client: NsxtClient, target: str, api: ManagerApi,
                 memory: AdapterMemory, clock: Clock | None = None) -> None:
        self.client = client
        self.target = target
        self.api = api
        self.memory = memory
        #: dates the group status reads (without one every poll reads its own)
        self.clock = clock
        #: group id -> when its unit statuses were asked for, and the read (perhaps in flight)
        self._statuses: dict[str, tuple[float, asyncio.Task[list[dict[str, Any]]]]] = {}
        #: unit -> when its last start was answered: no read asked for before answers for it
        self._started: dict[str, float] = {}
        #: the manager's upgrade units by display name, as last listed
        self.units: dict[str, dict[str, Any]] = {}
        #: the display name of the manager's own (MP) upgrade unit, once known
        self.manager = ""

    # -- units ------------------------------------------------------------------------------

    async def refresh_units(self) -> None:
        """List the manager's upgrade units again."""
        units = await self.client.pages("/upgrade/upgrade-units")
        self.units = {str(u["display_name"]): u for u in units}

    async def _unit(self, name: str) -> dict[str, Any]:
        if name not in self.units:
            await self.refresh_units()
        if name not in self.units:
            raise AdapterError(f"the NSX Manager at {self.client.where} has no upgrade unit "
                               f"called {name!r}")
        return self.units[name]

    async def unit_version(self, unit: str) -> str:
        """The version ``unit`` reports to the manager now."""
        info = await self.client.get(f"/upgrade/upgrade-units/{(await self._unit(unit))['id']}")
        return str(info.get("current_version", ""))

    async def _unit_status(self, name: str) -> dict[str, Any]:
        for attempt in (1, 2):
            info = await self._unit(name)
            group = str(info.get("group", {}).get("id"))
            items = await self._group_statuses(group, name, fresh=attempt == 1)
            for item in items:
                if item.get("id") == info["id"]:
                    return item
            if attempt == 1:
                await self.refresh_units()  # moved to another group meanwhile
        raise AdapterError(f"the NSX Manager at {self.client.where} reports no status for "
                           f"upgrade unit {name}")

    async def _group_statuses(self, group: str, unit: str, fresh: bool = True
                              ) -> list[dict[str, Any]]:
        """The unit statuses of ``group`` for a question about ``unit``: a read asked for at
        most :data:`STATUS_FRESH_S` ago (perhaps still in flight) and after ``unit`` was
        last started, when ``fresh`` and there is a clock; else a new one."""
        now = self.clock.now() if self.clock is not None else None
        known = self._statuses.get(group)
        if fresh and known is not None and now is not None \
                and now - known[0] <= STATUS_FRESH_S \
                and known[0] > self._started.get(unit, float("-inf")):
            return await asyncio.shield(known[1])
        read = asyncio.ensure_future(
            self.client.pages(f"/upgrade/upgrade-unit-groups/{group}/status"))
        if now is not None:
            self._statuses[group] = (now, read)
        try:
            return await asyncio.shield(read)
        except BaseException:
            if self._statuses.get(group, (0.0, None))[1] is read:
                del self._statuses[group]
            raise

    # -- the Upgrade Coordinator ------------------------------------------------------------

    async def start_coordinator(self) -> None:
        """Accept the EULA if needed and upgrade the Upgrade Coordinator, unless it is done
        (or, where the manager says so, 2.5.1+, in progress).  On 2.x nothing tells a
        coordinator upgrade in progress from one that failed, so it is asked again: the
        manager leaves one in progress alone, and a retry after a failure needs it."""
        status = await self.coordinator_status()
        if status.state is OpState.DONE or (status.state is OpState.RUNNING
                                            and await self.api.has_v25()):
            return
        eula = await self.client.get("/upgrade/eula/acceptance")
        if not eula.get("acceptance"):
            await self.client.post("/upgrade/eula/accept")
            log.info("nsxt.eula_accepted", manager=self.client.where)
        await self.client.post("/upgrade", action="upgrade_uc")
        self.memory.remember(coordinator_started=self.target)

    async def coordinator_status(self) -> OpStatus:
        """Where the Upgrade Coordinator's own upgrade stands."""
        summary = await self.client.get("/upgrade/summary")
        if summary.get("upgrade_coordinator_updated"):
            self.api.coordinator_upgraded()
            return OpStatus(OpState.DONE, "the Upgrade Coordinator runs "
                            f"{summary.get('upgrade_coordinator_version') or self.target}")
        if await self.api.has_v25():
            uc = await self.client.get(UC_STATUS)
            state, detail = UC_UPGRADE.read(uc.get("state")), str(uc.get("status") or "")
            if state is OpState.DONE:
                return OpStatus(state, f"the Upgrade Coordinator runs {self.target}")
            if state is OpState.FAILED:
                return OpStatus(state, "upgrading the Upgrade Coordinator failed: "
                                f"{detail or 'no details'}")
            return OpStatus(state, detail)
        # 2.3: the summary is all there is; the start is remembered across restarts
        if self.memory.data.get("coordinator_started") == self.target:
            return OpStatus(OpState.RUNNING, "upgrading the Upgrade Coordinator (the summary says "
                            "upgrade_coordinator_updated: false)")
        return OpStatus(OpState.NOT_STARTED, "the Upgrade Coordinator runs "
                        f"{summary.get('upgrade_coordinator_version') or 'the old version'}")

    # -- unit upgrades ----------------------------------------------------------------------

    async def start_upgrade(self, unit: str) -> None:
        """Select ``unit`` for upgrade unless it upgrades, succeeded or is at the target."""
        await self._unit(unit)
        # both asked at once: each is a round trip, and a start waits for them
        status, version = await asyncio.gather(self._unit_status(unit),
                                               self.unit_version(unit))
        state = UNIT_UPGRADE.read(status.get("status"))
        if state is OpState.RUNNING:
            log.warning("nsxt.upgrade_still_in_progress", unit=unit,
                        status=status.get("status"), percent=status.get("percent_complete"),
                        note="NSX-T cannot restart an upgrade unit in progress: following it")
            return
        if state is OpState.DONE:
            return
        if nsx_version(version) == nsx_version(self.target):
            return
        info = await self._unit(unit)
        try:
            await self.client.post("/upgrade/plan", {"list": [{"id": info["id"]}]},
                                   action="upgrade_selected_units")
        finally:
            if self.clock is not None:  # the statuses read before say nothing of it
                self._started[unit] = self.clock.now()
        log.info("nsxt.upgrade_started", unit=unit)

    async def upgrade_status(self, unit: str) -> OpStatus:
        """Where the upgrade of ``unit`` stands, from its group's unit status."""
        status = await self._unit_status(unit)
        state = UNIT_UPGRADE.read(status.get("status"))
        if state is OpState.DONE:
            return OpStatus(state, f"{unit} upgraded")
        if state is OpState.RUNNING:
            return OpStatus(state, f"{unit} upgrading "
                            f"({progress_band(status.get('percent_complete'))})")
        if state is OpState.FAILED:
            errors = "; ".join(str(e) for e in status.get("errors") or []) or "no details"
            return OpStatus(state, f"upgrading {unit} failed: {errors}")
        # not started or paused: the version the unit reports says whether it is done
        version = await self.unit_version(unit)
        if nsx_version(version) == nsx_version(self.target):
            return OpStatus(OpState.DONE, f"{unit} already reports {version}")
        return OpStatus(OpState.NOT_STARTED, f"{unit} reports {version}")

    async def verify_status(self, unit: str) -> OpStatus:
        """done once ``unit`` reports the target (the manager: and its cluster is STABLE)."""
        version = await self.unit_version(unit)
        if nsx_version(version) != nsx_version(self.target):
            return OpStatus(OpState.RUNNING, f"{unit} still reports {version}")
        if unit == (self.manager or await self._manager_name()):
            cluster = await self.client.get("/cluster/status")
            mgmt = str((cluster.get("mgmt_cluster_status") or {}).get("status", "UNKNOWN"))
            if mgmt != "STABLE":
                return OpStatus(OpState.RUNNING, f"{unit} reports {version} but its management "
                                f"cluster is {mgmt}: services are still starting")
        return OpStatus(OpState.DONE, f"{unit} reports {version}")

    async def _manager_name(self) -> str:
        groups = await self.client.pages("/upgrade/upgrade-unit-groups", component_type="MP")
        units = [str(u["display_name"]) for g in groups for u in g.get("upgrade_units") or []]
        self.manager = units[0] if units else ""
        return self.manager
