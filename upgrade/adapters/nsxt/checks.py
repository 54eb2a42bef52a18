"""The manager's pre- and post-upgrade checks, and what they found.

PRECHECK   2.x (VMware's 2.3 API has no check actions): the health the manager reports
           is the check: the units' ``warnings`` (``GET /upgrade/upgrade-units?
           has_warnings=true``), the ``errors`` of units not yet upgraded in ``GET
           /upgrade/upgrade-units/aggregate-info``, and ``GET /cluster/status``.
           Where the manager has 2.5.1's checks it also runs them (``POST /upgrade?
           action=execute_pre_upgrade_checks``, 202), waits for every component's
           ``pre_upgrade_status`` to be COMPLETED and adds the units' failed checks
           and checks with warnings (aggregate-info ``pre_upgrade_checks``).
POSTCHECK  2.5.1+: ``POST /upgrade/{component-type}?action=execute_post_upgrade_checks``
           and the groups' ``post_upgrade_status``; always: every unit at the target
           (and, with vCenter, no host left in maintenance mode)
"""

from __future__ import annotations

import re
from typing import Any

import structlog

from upgrade.adapters.nsxt.api import ManagerApi
from upgrade.adapters.nsxt.http import NsxtClient, NsxtHttpError, nsx_version
from upgrade.adapters.nsxt.maintenance import Maintenance
from upgrade.adapters.nsxt.status_enums import CHECKS_EXECUTION
from upgrade.adapters.nsxt.upgrades import Upgrades
from upgrade.compat.flows import load_flows
from upgrade.core.engine.messages import OpState
from upgrade.core.engine.outcome import OpStatus
from upgrade.core.model import Finding, Severity, UnitKind

__all__ = ["COMPONENTS", "Checks", "finding_id"]

log = structlog.get_logger(__name__)

#: the manager's upgrade components, in upgrade order
COMPONENTS = ("HOST", "EDGE", "CCP", "MP")
_NOT_WORD = re.compile(r"[^a-z0-9]+")


def finding_id(unit: str, text: str) -> str:
    """A stable id for what the manager says of ``unit`` (VMware's warnings and errors are
    plain texts): the unit and the text's first words, at most 60 characters."""
    words = [w for w in _NOT_WORD.split(text.lower()) if w]
    prefix = [w for w in _NOT_WORD.split(unit.lower()) if w]
    if words[: len(prefix)] != prefix:
        words = prefix + words
    slug = ""
    for word in words:
        if slug and len(slug) + 1 + len(word) > 60:
            break
        slug = f"{slug}-{word}" if slug else word
    return slug[:60] or "nsx-health"


class Checks:
    """Pre- and post-upgrade checks on the manager behind ``client``."""

    def __init__(self, client: NsxtClient, api: ManagerApi, upgrades: Upgrades,
                 maintenance: Maintenance) -> None:
        self.client = client
        self.api = api
        self.upgrades = upgrades
        self.maintenance = maintenance

    async def findings(self) -> list[Finding]:
        """What the manager reports against upgrading now, as findings."""
        found: dict[tuple[Severity, str, str], None] = {}
        for unit in await self.client.pages("/upgrade/upgrade-units", has_warnings="true"):
            for text in unit.get("warnings") or []:
                found[(Severity.WARNING, str(unit.get("display_name")), str(text))] = None
        aggregate = await self.client.pages("/upgrade/upgrade-units/aggregate-info",
                                            has_errors="true")
        for unit in aggregate:
            if unit.get("status", "NOT_STARTED") == "NOT_STARTED":
                for text in unit.get("errors") or []:
                    found[(Severity.ERROR, str(unit.get("display_name")), str(text))] = None
        if await self.api.has_v25():
            for unit in await self.client.pages("/upgrade/upgrade-units/aggregate-info"):
                for key, severity in (("failed_checks", Severity.ERROR),
                                      ("checks_with_warnings", Severity.WARNING)):
                    for check in _checks(unit, key):
                        for text in check.get("failure_messages") or [check.get(
                                "display_name", "")]:
                            found[(severity, str(unit.get("display_name")), str(text))] = None
        return [Finding(finding_id(unit, text), severity, text, unit)
                for severity, unit, text in found]

    async def _check_states(self, key: str) -> list[OpState]:
        """Where each component's checks (``key``: pre- or post-) stand (none: not started)."""
        summary = await self.client.get("/upgrade/status-summary")
        return [CHECKS_EXECUTION.read((c.get(key) or {}).get("status", "NOT_STARTED"))
                for c in summary.get("component_status", [])]

    async def run(self, which: str) -> None:
        """Start the ``pre`` or ``post`` upgrade checks where the manager has them."""
        if not await self.api.has_v25():
            return  # 2.x: the health the manager reports is read, nothing is started
        try:
            if which == "pre":
                if OpState.RUNNING not in await self._check_states("pre_upgrade_status"):
                    await self.client.post("/upgrade", action="execute_pre_upgrade_checks")
            else:
                summary = await self.client.get("/upgrade/status-summary")
                # the components this manager has (2.4+: no CCP; 2.5: edges first)
                listed = [str(c.get("component_type")) for c in
                          summary.get("component_status", []) if c.get("component_type")]
                for comp in listed or COMPONENTS:
                    await self.client.post(f"/upgrade/{comp}",
                                           action="execute_post_upgrade_checks")
        except NsxtHttpError as exc:
            log.warning("nsxt.checks_unavailable", which=which, error=str(exc))

    async def precheck_status(self) -> OpStatus:
        """running while the manager's checks run; failed on an ERROR finding or a
        management cluster that is not STABLE; else done."""
        if await self.api.has_v25():
            states = await self._check_states("pre_upgrade_status")
            if OpState.RUNNING in states:
                return OpStatus(OpState.RUNNING, "pre-upgrade checks are running")
            if states and all(s is OpState.NOT_STARTED for s in states):
                return OpStatus(OpState.NOT_STARTED)
        cluster = await self.client.get("/cluster/status")
        mgmt = str((cluster.get("mgmt_cluster_status") or {}).get("status", "UNKNOWN"))
        findings = await self.findings()
        errors = [f.id for f in findings if f.severity is Severity.ERROR]
        warnings = [f.id for f in findings if f.severity is Severity.WARNING]
        if mgmt != "STABLE":
            errors.insert(0, f"the management cluster is {mgmt}")
        if errors:
            return OpStatus(OpState.FAILED, f"pre-upgrade checks failed: {', '.join(errors)}")
        return OpStatus(OpState.DONE, "pre-upgrade checks passed" +
                        (f" with warnings: {', '.join(warnings)}" if warnings else ""))

    async def postcheck_status(self) -> OpStatus:
        """done once every unit reports the target and no host is left in maintenance."""
        if await self.api.has_v25():
            groups = await self.client.pages("/upgrade/upgrade-unit-groups/aggregate-info")
            if any(CHECKS_EXECUTION.read((g.get("post_upgrade_status") or {}).get("status"))
                   is OpState.RUNNING for g in groups):
                return OpStatus(OpState.RUNNING, "post-upgrade checks are running")
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
            return OpStatus(OpState.FAILED, "; ".join(problems))
        return OpStatus(OpState.DONE, f"every upgrade unit reports {target}")


def _checks(unit: dict[str, Any], key: str) -> list[dict[str, Any]]:
    found = (unit.get("pre_upgrade_checks") or {}).get(key) or {}
    return [c for c in found.get("checks") or [] if isinstance(c, dict)]
