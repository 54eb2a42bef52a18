"""The ``nsxt`` adapter: the NSX-T Manager 2.x upgrade REST API (``/api/v1/upgrade/...``).

Operations map onto the API as the Upgrade Coordinator documents it:

=================  ==================================================================
PRECHECK           ``POST /upgrade?action=execute_pre_upgrade_checks``; status from
                   ``status-summary`` (``pre_upgrade_status``) and the check failures
UPLOAD             ``POST /upgrade/bundles`` ``{url}`` or ``?action=upload`` (multipart);
                   ``GET /upgrade/bundles/{id}/upload-status``.  An upload that was
                   interrupted is found again (remembered id, the state file, the
                   manager's bundle list, the summary's last bundle) instead of being
                   uploaded again
COORDINATOR        EULA acceptance, then ``POST /upgrade?action=upgrade_uc``;
                   ``GET /upgrade/uc-upgrade-status``
UPGRADE            ``POST /upgrade/plan?action=upgrade_selected_units``, never for a unit
                   already upgrading or at the target; per-unit status of its group.
                   A unit the manager reports FAILED or PAUSED is selected again: that
                   is how the API restarts one.  One reported IN_PROGRESS past its
                   deadline cannot be: NSX-T 2.x has no call that aborts or restarts a
                   single unit, and ``plan?action=pause`` waits for the units in
                   progress.  The engine fails it, and ``resume --retry-failed`` follows
                   it again (or selects it again once the manager reports it FAILED)
VERIFY             the unit reports the target version; the manager must also have its
                   management cluster ``STABLE`` again (answering is not being ready)
POSTCHECK          post-upgrade checks where the manager has them; every unit at the
                   target (and, with vCenter, no host left in maintenance mode)
maintenance ops    the vSphere client when one is given; else done at once: the
                   Upgrade Coordinator puts hosts in maintenance mode itself
=================  ==================================================================

No retries here: the engine retries transient errors (5xx, refused connections,
time-outs), which is also how the manager's own upgrade is sat out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import structlog

from upgrade.adapters.nsxt.bundle import AdapterMemory, BundleUpload
from upgrade.adapters.nsxt.http import NsxtClient, NsxtHttpError, nsx_version
from upgrade.adapters.nsxt.vcenter import MaintenanceClient, VCenterConnect
from upgrade.clock import Clock
from upgrade.core.engine.outcome import OpStatus
from upgrade.core.model import (
    BUNDLE,
    COORDINATOR,
    SYSTEM,
    Cluster,
    Drs,
    EdgeCluster,
    Finding,
    Host,
    Inventory,
    Op,
    Severity,
    Vm,
)
from upgrade.core.versions import Version
from upgrade.errors import AdapterError, TransientAdapterError

log = structlog.get_logger(__name__)

#: what the maintenance operations report when no vCenter is configured
BY_COORDINATOR = ("maintenance mode is handled by the NSX-T Upgrade Coordinator "
                  "(no vCenter configured)")
_COMPONENTS = ("HOST", "EDGE", "CCP", "MP")
_RUNNING = ("IN_PROGRESS", "PAUSING")
_MAINTENANCE = (Op.ENTER_MAINTENANCE, Op.EVACUATE, Op.EXIT_MAINTENANCE, Op.RESTORE)


class NsxtAdapter:
    """The :class:`~upgrade.adapters.base.Adapter` for a real NSX-T 2.x Manager."""

    def __init__(self, manager: str, username: str, password: str, target: Version | str, *,
                 bundle_path: str | Path | None = None, bundle_url: str | None = None,
                 ca_bundle: str | Path | None = None, insecure: bool = False,
                 vsphere: MaintenanceClient | VCenterConnect | None = None,
                 state_dir: Path | None = None,
                 clock: Clock | None = None, timeout_s: float = 30.0,
                 upload_timeout_s: float = 6 * 3600.0,
                 maintenance_timeout_s: int = 1800) -> None:
        """``manager``: ``https://nsx.example[:port]``; credentials from NSXT_USERNAME/PASSWORD
        (read by the caller); ``target``: the version being upgraded to; the bundle as a
        local ``.mub`` (uploaded, multipart) or a URL the manager fetches; TLS verified
        against ``ca_bundle`` (else the system CAs) unless ``insecure``; ``vsphere`` (a
        connected client, or an async function that connects one when first needed) takes
        over maintenance mode and evacuation; ``state_dir`` keeps the bundle id and
        evacuation moves across restarts; ``clock`` dates what is done at once."""
        self.client = NsxtClient(manager, username, password, ca_bundle=ca_bundle,
                                 insecure=insecure, timeout_s=timeout_s)
        self.target = str(nsx_version(str(target)))
        self.memory = AdapterMemory(state_dir)
        self.bundle = BundleUpload(self.client, self.memory, self.target,
                                   path=Path(bundle_path) if bundle_path else None,
                                   url=bundle_url, timeout_s=upload_timeout_s)
        self._vsphere_source = vsphere
        self._vsphere: MaintenanceClient | None = None
        self.clock = clock
        self.maintenance_timeout_s = maintenance_timeout_s
        self._units: dict[str, dict[str, Any]] = {}
        self._manager = ""

    # -- inventory --------------------------------------------------------------------------

    async def inventory(self) -> Inventory:
        """Units from the upgrade-unit groups; hosts' clusters, DRS and VMs from vCenter."""
        summary = await self.client.get("/upgrade/summary")
        groups = await self.client.pages("/upgrade/upgrade-unit-groups")
        await self._refresh_units()
        by_type: dict[str, list[dict[str, Any]]] = {c: [] for c in _COMPONENTS}
        for g in groups:
            by_type.setdefault(str(g.get("type")), []).append(g)

        def names(g: dict[str, Any]) -> tuple[str, ...]:
            return tuple(str(u["display_name"]) for u in g.get("upgrade_units") or [])

        managers = [n for g in by_type["MP"] for n in names(g)]
        if not managers:
            raise AdapterError(f"the NSX Manager at {self.client.where} lists no MP upgrade unit")
        self._manager = managers[0]
        clusters, hosts = await self._clusters([(str(g["display_name"]), names(g))
                                                for g in by_type["HOST"]])
        findings = await self._findings()
        version = nsx_version(str(summary.get("system_version", "")))
        listed = {n for gs in by_type.values() for g in gs for n in names(g)}
        own = {name: nsx_version(str(u["current_version"])) for name, u in self._units.items()
               if u.get("current_version") and name in listed}
        return Inventory(
            version=version,
            manager=self._manager,
            controllers=tuple(n for g in by_type["CCP"] for n in names(g)),
            edge_clusters=tuple(EdgeCluster(str(g["display_name"]), names(g))
                                for g in by_type["EDGE"] if names(g)),
            clusters=clusters, hosts=hosts,
            warnings=tuple(f for f in findings if f.severity is Severity.WARNING),
            errors=tuple(f for f in findings if f.severity is Severity.ERROR),
            # units already upgraded (or behind): the plan leaves those at the target alone
            unit_versions=tuple(sorted((n, v) for n, v in own.items() if v != version)),
        )

    async def _clusters(self, groups: list[tuple[str, tuple[str, ...]]]
                        ) -> tuple[tuple[Cluster, ...], tuple[Host, ...]]:
        vsphere = await self._vcenter()
        vcenter = {h.name: (c, h) for c in await vsphere.inventory()
                   for h in c.hosts} if vsphere else {}
        members: dict[str, list[str]] = {}
        drs: dict[str, Drs] = {}
        hosts = []
        for group, units in groups:
            for name in units:
                found = vcenter.get(name)
                cluster = found[0].name if found else group
                drs.setdefault(cluster, found[0].drs if found else Drs.FULLY_AUTOMATED)
                members.setdefault(cluster, []).append(name)
                vms = tuple(Vm(v.name, v.powered_on) for v in found[1].vms) if found else ()
                hosts.append(Host(name, cluster, vms))
        clusters = tuple(Cluster(c, drs[c], tuple(m)) for c, m in members.items())
        return clusters, tuple(hosts)

    async def _findings(self) -> list[Finding]:
        try:
            failures = await self.client.pages("/upgrade/pre-upgrade-checks/failures")
        except NsxtHttpError:
            return []  # a manager without pre-upgrade checks
        return [Finding(str(f.get("id") or f.get("message", {}).get("error_code", "check")),
                        Severity.ERROR if f.get("type") == "FAILURE" else Severity.WARNING,
                        str(f.get("message", {}).get("message", "")), f.get("origin_name"))
                for f in failures]

    # -- units ------------------------------------------------------------------------------

    async def _refresh_units(self) -> None:
        units = await self.client.pages("/upgrade/upgrade-units")
        self._units = {str(u["display_name"]): u for u in units}

    async def _unit(self, name: str) -> dict[str, Any]:
        if name not in self._units:
            await self._refresh_units()
        if name not in self._units:
            raise AdapterError(f"the NSX Manager at {self.client.where} has no upgrade unit "
                               f"called {name!r}")
        return self._units[name]

    async def unit_version(self, unit: str) -> str:
        """The version ``unit`` reports to the manager now."""
        info = await self.client.get(f"/upgrade/upgrade-units/{(await self._unit(unit))['id']}")
        return str(info.get("current_version", ""))

    async def _unit_status(self, name: str) -> dict[str, Any]:
        for attempt in (1, 2):
            info = await self._unit(name)
            group = info.get("group", {}).get("id")
            items = await self.client.pages(f"/upgrade/upgrade-unit-groups/{group}"
                                            "/upgrade-unit/status")
            for item in items:
                if item.get("id") == info["id"]:
                    return item
            if attempt == 1:
                await self._refresh_units()  # moved to another group meanwhile
        raise AdapterError(f"the NSX Manager at {self.client.where} reports no status for "
                           f"upgrade unit {name}")

    # -- the protocol -----------------------------------------------------------------------

    async def start(self, op: Op, unit: str,
                    moves: tuple[tuple[str, str], ...] = ()) -> float | None:
        """Start ``op`` on ``unit`` unless it already runs or is done; None: end unknown."""
        _check_unit(op, unit)
        if op in _MAINTENANCE:
            return await self._start_maintenance(op, unit, list(moves))
        if op is Op.PRECHECK:
            await self._run_checks("pre")
        elif op is Op.UPLOAD:
            await self.bundle.start()
        elif op is Op.COORDINATOR:
            await self._start_coordinator()
        elif op is Op.UPGRADE:
            await self._start_upgrade(unit)
        elif op is Op.POSTCHECK:
            await self._run_checks("post")
        return None

    async def status(self, op: Op, unit: str) -> OpStatus:
        """How ``op`` on ``unit`` stands, read from the manager (and vCenter) now."""
        _check_unit(op, unit)
        if op in _MAINTENANCE:
            return await self._maintenance_status(op, unit)
        if op is Op.PRECHECK:
            return await self._precheck_status()
        if op is Op.UPLOAD:
            return await self.bundle.status()
        if op is Op.COORDINATOR:
            return await self._coordinator_status()
        if op is Op.UPGRADE:
            return await self._upgrade_status(unit)
        if op is Op.VERIFY:
            return await self._verify_status(unit)
        return await self._postcheck_status()

    async def check_access(self) -> None:
        """Raise :class:`AdapterError` now when the manager or vCenter refuses the
        credentials or the certificate; one that cannot be reached (a manager upgrading
        itself, say) passes: the operations wait for it."""
        try:
            await self.client.get("/upgrade/summary")
        except TransientAdapterError as exc:
            log.info("nsxt.manager_unreachable", error=str(exc))
        try:
            await self._vcenter()
        except TransientAdapterError as exc:
            log.info("nsxt.vcenter_unreachable", error=str(exc))

    async def close(self) -> None:
        """Close the HTTP connections (and the vSphere client)."""
        await self.client.close()
        source = self._vsphere_source
        vsphere = self._vsphere or (source if isinstance(source, MaintenanceClient) else None)
        self._vsphere, self._vsphere_source = None, None
        if vsphere is not None:
            await vsphere.close()

    # -- checks -----------------------------------------------------------------------------

    async def _check_statuses(self, key: str) -> list[str]:
        summary = await self.client.get("/upgrade/status-summary")
        return [str((c.get(key) or {}).get("status", "NOT_STARTED"))
                for c in summary.get("component_status", [])]

    async def _run_checks(self, which: str) -> None:
        if "IN_PROGRESS" in await self._check_statuses(f"{which}_upgrade_status"):
            return
        try:
            if which == "pre":
                await self.client.post("/upgrade", action="execute_pre_upgrade_checks")
            else:
                for comp in _COMPONENTS:
                    await self.client.post(f"/upgrade/{comp}",
                                           action="execute_post_upgrade_checks")
        except NsxtHttpError as exc:
            log.warning("nsxt.checks_unavailable", which=which, error=str(exc))

    async def _precheck_status(self) -> OpStatus:
        states = await self._check_statuses("pre_upgrade_status")
        if "IN_PROGRESS" in states:
            return OpStatus("running", "pre-upgrade checks are running")
        if states and all(s == "NOT_STARTED" for s in states):
            return OpStatus("not_started")
        findings = await self._findings()
        errors = [f.id for f in findings if f.severity is Severity.ERROR]
        warnings = [f.id for f in findings if f.severity is Severity.WARNING]
        if errors:
            return OpStatus("failed", f"pre-upgrade checks failed: {', '.join(errors)}")
        return OpStatus("done", "pre-upgrade checks passed" +
                        (f" with warnings: {', '.join(warnings)}" if warnings else ""))

    async def _postcheck_status(self) -> OpStatus:
        if "IN_PROGRESS" in await self._check_statuses("post_upgrade_status"):
            return OpStatus("running", "post-upgrade checks are running")
        await self._refresh_units()
        problems = [f"{n} reports {u.get('current_version')}, not {self.target}"
                    for n, u in self._units.items()
                    if nsx_version(str(u.get("current_version", "0"))) != nsx_version(self.target)]
        vsphere = await self._vcenter()
        if vsphere is not None:
            problems += [f"{h.name} is still in maintenance mode"
                         for c in await vsphere.inventory() for h in c.hosts
                         if h.in_maintenance and h.name in self._units]
        if problems:
            return OpStatus("failed", "; ".join(problems))
        return OpStatus("done", f"every upgrade unit reports {self.target}")

    # -- coordinator, units -----------------------------------------------------------------

    async def _start_coordinator(self) -> None:
        uc = await self.client.get("/upgrade/uc-upgrade-status")
        if uc.get("state") in ("IN_PROGRESS", "SUCCESS"):
            return
        eula = await self.client.get("/upgrade/eula/acceptance")
        if not eula.get("acceptance"):
            await self.client.post("/upgrade/eula/accept")
            log.info("nsxt.eula_accepted", manager=self.client.where)
        await self.client.post("/upgrade", action="upgrade_uc")

    async def _coordinator_status(self) -> OpStatus:
        uc = await self.client.get("/upgrade/uc-upgrade-status")
        state = str(uc.get("state", "NOT_STARTED"))
        errors = "; ".join(str(e) for e in uc.get("errors") or [])
        if state == "SUCCESS":
            return OpStatus("done", f"the Upgrade Coordinator runs {self.target}")
        if state == "FAILED":
            return OpStatus("failed", f"upgrading the Upgrade Coordinator failed: "
                            f"{errors or uc.get('status') or 'no details'}")
        return OpStatus("running" if state == "IN_PROGRESS" else "not_started",
                        str(uc.get("status") or ""))

    async def _start_upgrade(self, unit: str) -> None:
        status = await self._unit_status(unit)
        if status.get("status") in _RUNNING:
            log.warning("nsxt.upgrade_still_in_progress", unit=unit,
                        status=status.get("status"), percent=status.get("percent_complete"),
                        note="NSX-T cannot restart an upgrade unit in progress: following it")
            return
        if status.get("status") == "SUCCESS":
            return
        if nsx_version(await self.unit_version(unit)) == nsx_version(self.target):
            return
        uid = (await self._unit(unit))["id"]
        await self.client.post("/upgrade/plan", {"list": [{"id": uid}]},
                               action="upgrade_selected_units")
        log.info("nsxt.upgrade_started", unit=unit)

    async def _upgrade_status(self, unit: str) -> OpStatus:
        status = await self._unit_status(unit)
        state = status.get("status")
        if state == "SUCCESS":
            return OpStatus("done", f"{unit} upgraded")
        if state in _RUNNING:
            return OpStatus("running", f"{unit} upgrading "
                            f"({status.get('percent_complete', 0)}%)")
        if state == "FAILED":
            errors = "; ".join(str(e) for e in status.get("errors") or []) or "no details"
            return OpStatus("failed", f"upgrading {unit} failed: {errors}")
        version = await self.unit_version(unit)
        if nsx_version(version) == nsx_version(self.target):
            return OpStatus("done", f"{unit} already reports {version}")
        return OpStatus("not_started", f"{unit} reports {version}")

    async def _verify_status(self, unit: str) -> OpStatus:
        version = await self.unit_version(unit)
        if nsx_version(version) != nsx_version(self.target):
            return OpStatus("running", f"{unit} still reports {version}")
        if unit == (self._manager or await self._manager_name()):
            cluster = await self.client.get("/cluster/status")
            mgmt = str((cluster.get("mgmt_cluster_status") or {}).get("status", "UNKNOWN"))
            if mgmt != "STABLE":
                return OpStatus("running", f"{unit} reports {version} but its management "
                                f"cluster is {mgmt}: services are still starting")
        return OpStatus("done", f"{unit} reports {version}")

    async def _manager_name(self) -> str:
        groups = await self.client.pages("/upgrade/upgrade-unit-groups", component_type="MP")
        units = [str(u["display_name"]) for g in groups for u in g.get("upgrade_units") or []]
        self._manager = units[0] if units else ""
        return self._manager

    # -- maintenance ------------------------------------------------------------------------

    async def _vcenter(self) -> MaintenanceClient | None:
        """The vSphere client, connected on first use when given as a connect function."""
        source = self._vsphere_source
        if self._vsphere is None and source is not None:
            if isinstance(source, MaintenanceClient):
                self._vsphere = source
            else:
                self._vsphere = await source()
        return self._vsphere

    async def _start_maintenance(self, op: Op, host: str,
                                 moves: list[tuple[str, str]]) -> float | None:
        vsphere = await self._vcenter()
        if vsphere is None:
            return self.clock.now() if self.clock is not None else None
        if op is Op.ENTER_MAINTENANCE:
            await vsphere.start_enter_maintenance(host, self.maintenance_timeout_s)
        elif op is Op.EVACUATE:
            self.memory.remember(moves={**self.memory.data.get("moves", {}), host: moves})
            await vsphere.start_evacuate(host, moves)
        elif op is Op.RESTORE:
            self.memory.remember(restores={**self.memory.data.get("restores", {}), host: moves})
            await vsphere.start_restore(host, moves)
        else:
            await vsphere.start_exit_maintenance(host)
        return None

    async def _maintenance_status(self, op: Op, host: str) -> OpStatus:
        vsphere = await self._vcenter()
        if vsphere is None:
            return OpStatus("done", BY_COORDINATOR)
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
        return OpStatus(result.state, result.detail)


def _check_unit(op: Op, unit: str) -> None:
    expected = {Op.PRECHECK: SYSTEM, Op.POSTCHECK: SYSTEM, Op.UPLOAD: BUNDLE,
                Op.COORDINATOR: COORDINATOR}.get(op)
    if expected is not None and unit != expected:
        raise AdapterError(f"{op.value} runs on {expected!r}, not {unit!r}")
