"""The ``nsxt`` adapter: the NSX-T Manager 2.x upgrade REST API (``/api/v1/upgrade/...``).

Operations map onto the API as the Upgrade Coordinator documents it:

=================  ==================================================================
PRECHECK           the health the manager reports: unit ``warnings``, ``errors`` in
                   ``/upgrade/upgrade-units/aggregate-info``, ``/cluster/status``; on a
                   2.5.1+ manager also ``POST /upgrade?action=execute_pre_upgrade_checks``
                   and its ``pre_upgrade_status`` (see :mod:`.checks`)
UPLOAD             ``POST /upgrade/bundles`` ``{url}`` or ``?action=upload`` (multipart);
                   ``GET /upgrade/bundles/{id}/upload-status``.  An upload that was
                   interrupted is found again (remembered id, the state file, the
                   summary's last bundle) instead of being uploaded again
COORDINATOR        EULA acceptance, then ``POST /upgrade?action=upgrade_uc``; progress from
                   ``GET /upgrade/summary`` (2.5.1+: ``GET /upgrade/uc-upgrade-status``)
UPGRADE            ``POST /upgrade/plan?action=upgrade_selected_units``, never for a unit
                   already upgrading or at the target; unit status from
                   ``GET /upgrade/upgrade-unit-groups/{group-id}/status``.
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

from upgrade.adapters.nsxt.api import ManagerApi
from upgrade.adapters.nsxt.bundle import AdapterMemory, BundleUpload
from upgrade.adapters.nsxt.checks import COMPONENTS, Checks
from upgrade.adapters.nsxt.http import NsxtClient, nsx_version
from upgrade.adapters.nsxt.maintenance import BY_COORDINATOR, MAINTENANCE_OPS, Maintenance
from upgrade.adapters.nsxt.upgrades import Upgrades
from upgrade.adapters.nsxt.vcenter import MaintenanceClient, VCenterConnect, VCenterInventory
from upgrade.clock import Clock
from upgrade.core.engine.outcome import OpStatus
from upgrade.core.model import (
    BUNDLE,
    COORDINATOR,
    SYSTEM,
    Cluster,
    Drs,
    EdgeCluster,
    Host,
    Inventory,
    Op,
    Severity,
)
from upgrade.core.versions import Version
from upgrade.errors import AdapterError, TransientAdapterError

__all__ = ["BY_COORDINATOR", "NsxtAdapter"]

log = structlog.get_logger(__name__)


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
                                   url=bundle_url, timeout_s=upload_timeout_s, clock=clock)
        self.maintenance = Maintenance(vsphere, self.memory, clock, maintenance_timeout_s)
        self.api = ManagerApi(self.client)
        self.upgrades = Upgrades(self.client, self.target, self.api, self.memory, clock)
        self.checks = Checks(self.client, self.api, self.upgrades, self.maintenance)

    # -- inventory --------------------------------------------------------------------------

    async def inventory(self) -> Inventory:
        """Units from the upgrade-unit groups; hosts' clusters, DRS and VMs from vCenter."""
        summary = await self.client.get("/upgrade/summary")
        groups = await self.client.pages("/upgrade/upgrade-unit-groups")
        await self.upgrades.refresh_units()
        by_type: dict[str, list[dict[str, Any]]] = {c: [] for c in COMPONENTS}
        for g in groups:
            by_type.setdefault(str(g.get("type")), []).append(g)

        def names(g: dict[str, Any]) -> tuple[str, ...]:
            return tuple(str(u["display_name"]) for u in g.get("upgrade_units") or [])

        managers = [n for g in by_type["MP"] for n in names(g)]
        if not managers:
            raise AdapterError(f"the NSX Manager at {self.client.where} lists no MP upgrade unit")
        self.upgrades.manager = managers[0]
        vsphere = await self.maintenance.vcenter()
        vcenter = await vsphere.inventory() if vsphere else None
        clusters, hosts = _clusters([(str(g["display_name"]), names(g)) for g in by_type["HOST"]],
                                    vcenter)
        findings = await self.checks.findings()
        version = nsx_version(str(summary.get("system_version", "")))
        listed = {n for gs in by_type.values() for g in gs for n in names(g)}
        own = {name: nsx_version(str(u["current_version"]))
               for name, u in self.upgrades.units.items()
               if u.get("current_version") and name in listed}
        return Inventory(
            version=version,
            manager=self.upgrades.manager,
            controllers=tuple(n for g in by_type["CCP"] for n in names(g)),
            edge_clusters=tuple(EdgeCluster(str(g["display_name"]), names(g))
                                for g in by_type["EDGE"] if names(g)),
            clusters=clusters, hosts=hosts,
            warnings=tuple(f for f in findings if f.severity is Severity.WARNING),
            errors=tuple(f for f in findings if f.severity is Severity.ERROR),
            # units already upgraded (or behind): the plan leaves those at the target alone
            unit_versions=tuple(sorted((n, v) for n, v in own.items() if v != version)),
        )

    async def unit_version(self, unit: str) -> str:
        """The version ``unit`` reports to the manager now."""
        return await self.upgrades.unit_version(unit)

    # -- the protocol -----------------------------------------------------------------------

    async def start(self, op: Op, unit: str,
                    moves: tuple[tuple[str, str], ...] = ()) -> float | None:
        """Start ``op`` on ``unit`` unless it already runs or is done; None: end unknown."""
        _check_unit(op, unit)
        if op in MAINTENANCE_OPS:
            return await self.maintenance.start(op, unit, list(moves))
        if op is Op.PRECHECK:
            await self.checks.run("pre")
        elif op is Op.UPLOAD:
            await self.bundle.start()
        elif op is Op.COORDINATOR:
            await self.upgrades.start_coordinator()
        elif op is Op.UPGRADE:
            await self.upgrades.start_upgrade(unit)
        elif op is Op.POSTCHECK:
            await self.checks.run("post")
        return None

    async def status(self, op: Op, unit: str) -> OpStatus:
        """How ``op`` on ``unit`` stands, read from the manager (and vCenter) now."""
        _check_unit(op, unit)
        if op in MAINTENANCE_OPS:
            return await self.maintenance.status(op, unit)
        if op is Op.PRECHECK:
            return await self.checks.precheck_status()
        if op is Op.UPLOAD:
            return await self.bundle.status()
        if op is Op.COORDINATOR:
            return await self.upgrades.coordinator_status()
        if op is Op.UPGRADE:
            return await self.upgrades.upgrade_status(unit)
        if op is Op.VERIFY:
            return await self.upgrades.verify_status(unit)
        return await self.checks.postcheck_status()

    async def check_access(self) -> None:
        """Raise :class:`AdapterError` now when the manager or vCenter refuses the
        credentials or the certificate; one that cannot be reached (a manager upgrading
        itself, say) passes: the operations wait for it."""
        try:
            await self.client.get("/upgrade/summary")
        except TransientAdapterError as exc:
            log.info("nsxt.manager_unreachable", error=str(exc))
        try:
            await self.maintenance.vcenter()
        except TransientAdapterError as exc:
            log.info("nsxt.vcenter_unreachable", error=str(exc))

    async def close(self) -> None:
        """Close the HTTP connections (and the vSphere client)."""
        await self.client.close()
        await self.maintenance.close()


def _clusters(groups: list[tuple[str, tuple[str, ...]]], vcenter: VCenterInventory | None
              ) -> tuple[tuple[Cluster, ...], tuple[Host, ...]]:
    """The NSX host groups' units as hosts, in vCenter's clusters (with their DRS level
    and VMs) where vCenter knows them, else in a cluster named after their group."""
    found = vcenter.host_map if vcenter else {}
    cluster_of = {h: c for c in vcenter.clusters for h in c.hosts} if vcenter else {}
    members: dict[str, list[str]] = {}
    drs: dict[str, Drs] = {}
    hosts = []
    for group, units in groups:
        for name in units:
            host, known = found.get(name), cluster_of.get(name)
            cluster = known.name if known else group
            drs.setdefault(cluster, known.drs if known else Drs.FULLY_AUTOMATED)
            members.setdefault(cluster, []).append(name)
            hosts.append(Host(name, cluster, host.vms if host else ()))
    clusters = tuple(Cluster(c, drs[c], tuple(m)) for c, m in members.items())
    return clusters, tuple(hosts)


def _check_unit(op: Op, unit: str) -> None:
    expected = {Op.PRECHECK: SYSTEM, Op.POSTCHECK: SYSTEM, Op.UPLOAD: BUNDLE,
                Op.COORDINATOR: COORDINATOR}.get(op)
    if expected is not None and unit != expected:
        raise AdapterError(f"{op.value} runs on {expected!r}, not {unit!r}")
