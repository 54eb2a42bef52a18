"""The JSON bodies of the emulated NSX-T 2.x upgrade API, derived from the site at ``now``.

Shapes are VMware's (the contract in contracts/nsxt/, generated from VMware's SDK):
only the fields VMware defines, its enums, per API version (``site.api``: 2.3, or 2.5
with 2.5.1's additions); lists are ``{"results", "result_count"[, "cursor"]}``;
success bodies never carry ``error_code``; units are named by the inventory's ids.
"""

from __future__ import annotations

from typing import Any

from upgrade.core.model import COORDINATOR, SYSTEM, Op
from upgrade.emulator.layout import Group
from upgrade.emulator.site import Site

_UNIT_STATUS = {"not_started": "NOT_STARTED", "running": "IN_PROGRESS", "done": "SUCCESS",
                "failed": "FAILED"}
_CHECK_STATUS = {"not_started": "NOT_STARTED", "running": "IN_PROGRESS", "done": "COMPLETED",
                 "failed": "COMPLETED"}


def listing(items: list[dict[str, Any]], cursor: str | None = None,
            page_size: int | None = None) -> dict[str, Any]:
    """A paged list: ``cursor`` is the offset to continue from ("" at the end)."""
    start = int(cursor) if cursor and cursor.isdigit() else 0
    end = len(items) if not page_size or page_size <= 0 else start + page_size
    body: dict[str, Any] = {"results": items[start:end], "result_count": len(items)}
    if end < len(items):
        body["cursor"] = str(end)
    return body


def unit(site: Site, name: str) -> dict[str, Any]:
    """An UpgradeUnit (VMware's fields only: no ``resource_type``)."""
    state = site.world.units[name]
    group = site.group_of(name)
    warnings = [w.message or w.id for w in site.inventory.warnings if w.unit == name]
    metadata = [{"key": "group", "value": state.group}]
    return {"id": site.unit_ids[name], "display_name": name,
            "type": group.type, "current_version": state.version,
            "group": {"id": group.id, "display_name": group.name},
            "warnings": warnings, "metadata": metadata}


def health_errors(site: Site, name: str) -> list[str]:
    """The inventory's health errors of ``name`` (those of no unit: the manager's)."""
    return [e.message or e.id for e in site.inventory.errors
            if (e.unit or site.inventory.manager) == name]


def unit_status(site: Site, name: str, now: float) -> dict[str, Any]:
    """An UpgradeUnitStatus (``metadata`` from 2.5.1)."""
    state, detail = site.state(Op.UPGRADE, name, now)
    percent = {"done": 100.0, "running": round(site.fraction(Op.UPGRADE, name, now) * 100, 1)}
    body = {"id": site.unit_ids[name], "display_name": name, "status": _UNIT_STATUS[state],
            "percent_complete": percent.get(state, 0.0),
            "errors": [detail] if state == "failed" and detail else []}
    if site.v25:
        body["metadata"] = []
    return body


def unit_aggregate(site: Site, name: str, now: float) -> dict[str, Any]:
    """An UpgradeUnitAggregateInfo: the unit, its upgrade status, and its errors (health
    errors before an upgrade, the upgrade's errors after); 2.5: the check results too."""
    status = unit_status(site, name, now)
    body = {**unit(site, name), "status": status["status"],
            "percent_complete": status["percent_complete"],
            "errors": health_errors(site, name) + status["errors"]}
    if site.v25:
        body["pre_upgrade_checks"] = _check_results(site, name, Op.PRECHECK, now)
        body["post_upgrade_checks"] = _check_results(site, name, Op.POSTCHECK, now)
    return body


def _check_results(site: Site, name: str, op: Op, now: float) -> dict[str, Any]:
    """An UpgradeCheckListResults of ``name`` once the checks ``op`` completed."""
    failed: list[dict[str, Any]] = []
    warned: list[dict[str, Any]] = []
    if op is Op.PRECHECK and site.state(op, SYSTEM, now)[0] in ("done", "failed"):
        comp = site.component(name)
        failed = [{"component_type": comp, "display_name": e, "status": "FAILURE",
                   "failure_messages": [e]} for e in health_errors(site, name)]
        warned = [{"component_type": comp, "display_name": w, "status": "WARNING",
                   "failure_messages": [w]} for w in unit(site, name)["warnings"]]
    return {"failed_checks": {"checks": failed, "result_count": len(failed)},
            "checks_with_warnings": {"checks": warned, "result_count": len(warned)}}


def _group_counts(site: Site, group: Group, now: float) -> dict[str, Any]:
    statuses = [unit_status(site, u, now) for u in group.units]
    kinds = {s["status"] for s in statuses}
    if "IN_PROGRESS" in kinds:
        status = "IN_PROGRESS"
    elif statuses and kinds == {"SUCCESS"}:
        status = "SUCCESS"
    elif "FAILED" in kinds:
        status = "FAILED"
    elif "SUCCESS" in kinds:
        status = "PAUSED"
    else:
        status = "NOT_STARTED" if statuses else "SUCCESS"
    percent = sum(s["percent_complete"] for s in statuses) / len(statuses) if statuses else 100.0
    return {"status": status, "upgrade_unit_count": len(group.units),
            "failed_count": sum(s["status"] == "FAILED" for s in statuses),
            "percent_complete": round(percent, 1)}


def group(site: Site, g: Group, summary: bool = False) -> dict[str, Any]:
    """An UpgradeUnitGroup (``summary``: without its units)."""
    body: dict[str, Any] = {
        "resource_type": "UpgradeUnitGroup", "id": g.id, "display_name": g.name, "type": g.type,
        "parallel": g.parallel, "enabled": g.enabled, "upgrade_unit_count": len(g.units),
        "extended_configuration": g.extended, "_revision": g.revision,
    }
    if not summary:
        body["upgrade_units"] = [unit(site, u) for u in g.units]
    return body


def group_status(site: Site, g: Group, now: float) -> dict[str, Any]:
    """An UpgradeUnitGroupStatus."""
    return {"group_id": g.id, "group_name": g.name, **_group_counts(site, g, now)}


def aggregate_info(site: Site, g: Group, now: float) -> dict[str, Any]:
    """An UpgradeUnitGroupAggregateInfo (2.5.1 adds ``post_upgrade_status``)."""
    body = {**group(site, g), **_group_counts(site, g, now)}
    if site.v25:
        body["post_upgrade_status"] = check_status(site, Op.POSTCHECK, now)
    return body


def check_status(site: Site, op: Op, now: float, component: str | None = None
                 ) -> dict[str, Any]:
    """An UpgradeChecksExecutionStatus (2.5.1) of the pre- or post-upgrade checks."""
    state, _ = site.state(op, SYSTEM, now)
    body: dict[str, Any] = {"status": _CHECK_STATUS[state]}
    if op is Op.PRECHECK and state in ("done", "failed"):
        units = site.component_units(component) if component else list(site.unit_ids)
        body["node_with_issues_count"] = sum(
            bool(health_errors(site, u) or unit(site, u)["warnings"]) for u in units)
    return body


def component_status(site: Site, comp: str, now: float, selection: str = "ALL"
                     ) -> dict[str, Any]:
    """A ComponentUpgradeStatus."""
    names = [u for g in site.component_groups(comp) for u in g.units
             if selection == "ALL" or g.enabled == (selection == "SELECTED")]
    statuses = [unit_status(site, u, now) for u in names]
    kinds = [s["status"] for s in statuses]
    plan = site.plan
    done = kinds.count("SUCCESS")
    if not names:
        status = "SUCCESS"
    elif "IN_PROGRESS" in kinds:  # PAUSING exists from 2.5.1 on
        pausing = plan.component == comp and plan.state == "pausing" and site.v25
        status = "PAUSING" if pausing else "IN_PROGRESS"
    elif done == len(names):
        status = "SUCCESS"
    elif "FAILED" in kinds:
        status = "FAILED"
    elif plan.component == comp and plan.state == "running":
        status = "IN_PROGRESS"
    elif done or (plan.component == comp and plan.state == "paused"):
        status = "PAUSED"
    else:
        status = "NOT_STARTED"
    percent = sum(s["percent_complete"] for s in statuses) / len(names) if names else 100.0
    body: dict[str, Any] = {
        "component_type": comp, "status": status, "percent_complete": round(percent, 1),
        "details": f"{done} of {len(names)} upgrade units at {site.world.target}",
        "can_skip": status in ("FAILED", "PAUSED"),
    }
    if site.v25:
        body["pre_upgrade_status"] = check_status(site, Op.PRECHECK, now, comp)
        body["target_component_version"] = site.world.target
        body["node_count_at_target_version"] = sum(
            site.world.units[u].version == site.world.target for u in names)
    return body


def overall_status(components: list[dict[str, Any]]) -> str:
    """The overall upgrade status from the component statuses."""
    kinds = [c["status"] for c in components]
    if "IN_PROGRESS" in kinds:
        return "IN_PROGRESS"
    if "PAUSING" in kinds:
        return "PAUSING"
    if all(k == "SUCCESS" for k in kinds):
        return "SUCCESS"
    if "FAILED" in kinds:
        return "FAILED"
    if "SUCCESS" in kinds or "PAUSED" in kinds:
        return "PAUSED"
    return "NOT_STARTED"


def status_summary(site: Site, now: float, component: str | None = None,
                   selection: str = "ALL") -> dict[str, Any]:
    """An UpgradeStatus: the flow's components in its order (HOST, EDGE, CCP, MP up to 2.3;
    no CCP from 2.4, whose manager absorbs the controllers; 2.5: EDGE first), over the units
    of ``selection`` (ALL, SELECTED: in enabled groups, DESELECTED: in disabled ones)."""
    everything = [component_status(site, c, now, selection) for c in site.components]
    shown = [c for c in everything if component in (None, c["component_type"])]
    body: dict[str, Any] = {"overall_upgrade_status": overall_status(everything),
                            "component_status": shown}
    by_type = {c["component_type"]: c for c in everything}
    for key, comp in (("host_status", "HOST"), ("edge_status", "EDGE"), ("ccp_status", "CCP")):
        if component in (None, comp) and comp in by_type:
            body[key] = by_type[comp]
    return body


def summary(site: Site, now: float) -> dict[str, Any]:
    """An UpgradeSummary."""
    system_version = site.world.units[site.inventory.manager].version
    bundle = site.last_good_bundle(now)
    uc_done = site.uc_done(now)
    body: dict[str, Any] = {
        "system_version": system_version,
        "target_version": site.world.target if bundle else system_version,
        "upgrade_status": overall_status([component_status(site, c, now)
                                          for c in site.components]),
        "upgrade_coordinator_version": site.world.target if uc_done
        else str(site.inventory.version),
        "upgrade_coordinator_updated": uc_done,
        "component_target_versions": [
            {"component_type": c, "target_version": site.world.target} for c in site.components
        ] if bundle else [],
    }
    if bundle is not None:
        body["upgrade_bundle_file_name"] = bundle.name
    return body


def uc_status(site: Site, now: float) -> dict[str, Any]:
    """A UcUpgradeStatus (2.5.1): ``state`` and ``status``."""
    state, detail = site.state(Op.COORDINATOR, COORDINATOR, now)
    return {"state": _UNIT_STATUS[state], "status": detail or _UNIT_STATUS[state]}


def bundle_status(site: Site, bundle_id: str, now: float) -> dict[str, Any]:
    """An UpgradeBundleUploadStatus."""
    bundle = site.bundle(bundle_id)
    status, percent, detail = site.bundle_status(bundle, now)
    body: dict[str, Any] = {"status": status, "percent": percent, "detailed_status": detail}
    if bundle.url:
        body["url"] = bundle.url
    return body


def bundle_info(site: Site, bundle_id: str, now: float) -> dict[str, Any]:
    """An UpgradeBundleInfo: ``bundle_size`` and ``url`` (VMware defines no more)."""
    bundle = site.bundle(bundle_id)
    body = {"bundle_size": str(bundle.size)}
    if bundle.url:
        body["url"] = bundle.url
    return body


def cluster_status(site: Site, now: float) -> dict[str, Any]:
    """A ClusterStatus: the management cluster is STABLE only when the manager is ready
    (INITIALIZING while its services start), the control cluster UNSTABLE while a
    controller upgrades."""
    phase = site.manager_phase(now)
    mgmt = "STABLE" if phase == "up" else "INITIALIZING" if phase == "warming" else "UNSTABLE"
    controllers_busy = any(site.state(Op.UPGRADE, c, now)[0] == "running"
                           for c in site.inventory.controllers)
    return {"cluster_id": site.unit_ids[site.inventory.manager],
            "mgmt_cluster_status": {"status": mgmt},
            "control_cluster_status": {"status": "UNSTABLE" if controllers_busy else "STABLE"}}


def service_status(site: Site, now: float) -> dict[str, Any]:
    """A NodeServiceStatusProperties: services run once the manager is ready."""
    return {"runtime_state": "running" if site.manager_phase(now) == "up" else "stopped"}


def node(site: Site) -> dict[str, Any]:
    """A NodeProperties of the manager (2.5.1 adds ``fully_qualified_domain_name``)."""
    version = site.world.units[site.inventory.manager].version
    body = {"node_version": version, "product_version": version,
            "hostname": site.inventory.manager}
    if site.v25:
        body["fully_qualified_domain_name"] = site.inventory.manager
    return body


def _component_version(site: Site, name: str) -> tuple[str, str]:
    return site.component(name), site.world.units[name].version


def nodes(site: Site) -> list[dict[str, Any]]:
    """NodeInfos: every upgrade unit as a node of its component."""
    return [{"id": site.unit_ids[n], "display_name": n, "type": site.component(n),
             "component_version": site.world.units[n].version}
            for g in site.groups for n in g.units]


def nodes_summary(site: Site) -> dict[str, Any]:
    """A NodeSummaryList: how many nodes of each component run each version."""
    counts: dict[tuple[str, str], int] = {}
    for n in (u for g in site.groups for u in g.units):
        key = _component_version(site, n)
        counts[key] = counts.get(key, 0) + 1
    return {"results": [{"type": t, "component_version": v, "node_count": c}
                        for (t, v), c in counts.items()]}


def units_stats(site: Site) -> list[dict[str, Any]]:
    """UpgradeUnitTypeStats: units per component and version, and those with issues."""
    stats: dict[tuple[str, str], list[int]] = {}
    for n in (u for g in site.groups for u in g.units):
        entry = stats.setdefault(_component_version(site, n), [0, 0])
        entry[0] += 1
        entry[1] += bool(health_errors(site, n) or unit(site, n)["warnings"])
    return [{"type": t, "version": v, "node_count": c, "node_with_issues_count": i}
            for (t, v), (c, i) in stats.items()]


def whitelist(site: Site, component: str) -> dict[str, Any]:
    """An AcceptableComponentVersion."""
    versions = site.whitelist.get(component, [str(site.inventory.version)])
    return {"component_type": component, "acceptable_versions": versions}

