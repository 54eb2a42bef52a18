"""The manager's pre- and post-upgrade checks, and what they found.

PRECHECK   ``POST /upgrade?action=execute_pre_upgrade_checks``; status from
           ``status-summary`` (``pre_upgrade_status``) and the check failures
POSTCHECK  post-upgrade checks where the manager has them; every unit at the target
           (and, with vCenter, no host left in maintenance mode)
"""

from __future__ import annotations

import structlog

from upgrade.adapters.nsxt.http import NsxtClient, NsxtHttpError, nsx_version
from upgrade.adapters.nsxt.maintenance import Maintenance
from upgrade.adapters.nsxt.upgrades import Upgrades
from upgrade.compat.flows import load_flows
from upgrade.core.engine.outcome import OpStatus
from upgrade.core.model import Finding, Severity, UnitKind

__all__ = ["COMPONENTS", "Checks"]

log = structlog.get_logger(__name__)

#: the manager's upgrade components, in upgrade order
COMPONENTS = ("HOST", "EDGE", "CCP", "MP")


class Checks:
    """Pre- and post-upgrade checks on the manager behind ``client``."""

    def __init__(self, client: NsxtClient, upgrades: Upgrades, maintenance: Maintenance) -> None:
        self.client = client
        self.upgrades = upgrades
        self.maintenance = maintenance

    async def findings(self) -> list[Finding]:
        """The pre-upgrade check failures as findings (none on a manager without checks)."""
        try:
            failures = await self.client.pages("/upgrade/pre-upgrade-checks/failures")
        except NsxtHttpError:
            return []  # a manager without pre-upgrade checks
        return [Finding(str(f.get("id") or f.get("message", {}).get("error_code", "check")),
                        Severity.ERROR if f.get("type") == "FAILURE" else Severity.WARNING,
                        str(f.get("message", {}).get("message", "")), f.get("origin_name"))
                for f in failures]

    async def _statuses(self, key: str) -> list[str]:
        summary = await self.client.get("/upgrade/status-summary")
        return [str((c.get(key) or {}).get("status", "NOT_STARTED"))
                for c in summary.get("component_status", [])]

    async def run(self, which: str) -> None:
        """Start the ``pre`` or ``post`` upgrade checks unless they run already."""
        if "IN_PROGRESS" in await self._statuses(f"{which}_upgrade_status"):
            return
        try:
            if which == "pre":
                await self.client.post("/upgrade", action="execute_pre_upgrade_checks")
            else:
                for comp in COMPONENTS:
                    await self.client.post(f"/upgrade/{comp}",
                                           action="execute_post_upgrade_checks")
        except NsxtHttpError as exc:
            log.warning("nsxt.checks_unavailable", which=which, error=str(exc))

    async def precheck_status(self) -> OpStatus:
        """running while the pre-upgrade checks run; failed on an ERROR finding; else done."""
        states = await self._statuses("pre_upgrade_status")
        if "IN_PROGRESS" in states:
            return OpStatus("running", "pre-upgrade checks are running")
        if states and all(s == "NOT_STARTED" for s in states):
            return OpStatus("not_started")
        findings = await self.findings()
        errors = [f.id for f in findings if f.severity is Severity.ERROR]
        warnings = [f.id for f in findings if f.severity is Severity.WARNING]
        if errors:
            return OpStatus("failed", f"pre-upgrade checks failed: {', '.join(errors)}")
        return OpStatus("done", "pre-upgrade checks passed" +
                        (f" with warnings: {', '.join(warnings)}" if warnings else ""))

    async def postcheck_status(self) -> OpStatus:
        """done once every unit reports the target and no host is left in maintenance."""
        if "IN_PROGRESS" in await self._statuses("post_upgrade_status"):
            return OpStatus("running", "post-upgrade checks are running")
        upgrades = self.upgrades
        await upgrades.refresh_units()
        target = upgrades.target
        # from 2.4 the controllers are merged into the manager (the flow data): not asked
        merged = load_flows().merges(nsx_version(target), UnitKind.CONTROLLER)
        problems = [f"{n} reports {u.get('current_version')}, not {target}"
                    for n, u in upgrades.units.items()
                    if nsx_version(str(u.get("current_version", "0"))) != nsx_version(target)
                    and not (merged and u.get("type") == "CCP")]
        vsphere = await self.maintenance.vcenter()
        if vsphere is not None:
            vcenter = await vsphere.inventory()
            problems += [f"{h.id} is still in maintenance mode" for h in vcenter.hosts
                         if h.id in vcenter.in_maintenance and h.id in upgrades.units]
        if problems:
            return OpStatus("failed", "; ".join(problems))
        return OpStatus("done", f"every upgrade unit reports {target}")
