"""The JSON bodies of the emulated NSX-T 2.x upgrade API, derived from the site at ``now``.

Shapes follow VMware's API guide (DESIGN section 2): lists are ``{"results",
"result_count", "cursor"}``, statuses use the documented enums, success bodies
never carry ``error_code``, units are named by the inventory's ids.
"""

from __future__ import annotations

from typing import Any

from upgrade.core.model import COORDINATOR, SYSTEM, Op, Severity
from upgrade.emulator.layout import COMPONENTS, Group
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
    return {"results": items[start:end], "result_count": len(items),
            "cursor": str(end) if end < len(items) else ""}


def unit(site: Site, name: str) -> dict[str, Any]:
    """An UpgradeUnit."""
    state = site.world.units[name]
    group = site.group_of(name)
    warnings = [w.message for w in site.inventory.warnings if w.unit == name]
    metadata = [{"key": "group", "value": state.group}]
    return {"resource_type": "UpgradeUnit", "id": site.unit_ids[name], "display_name": name,
            "type": group.type, "current_version": state.version,
            "group": {"id": group.id, "display_name": group.name},
            "warnings": warnings, "metadata": metadata}


def unit_status(site: Site, name: str, now: float) -> dict[str, Any]:
    """An UpgradeUnitStatus."""
    state, detail = site.state(Op.UPGRADE, name, now)
    percent = {"done": 100.0, "running": round(site.fraction(Op.UPGRADE, name, now) * 100, 1)}
    return {"id": site.unit_ids[name], "display_name": name, "status": _UNIT_STATUS[state],
            "percent_complete": percent.get(state, 0.0),
            "errors": [detail] if state == "failed" and detail else [], "metadata": []}


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
    """An UpgradeUnitGroupAggregateInfo."""
    return {**group(site, g), **_group_counts(site, g, now),
            "post_upgrade_status": check_status(site, Op.POSTCHECK, now)}


def check_status(site: Site, op: Op, now: float) -> dict[str, Any]:
    """An UpgradeChecksExecutionStatus of the pre- or post-upgrade checks."""
    state, _ = site.state(op, SYSTEM, now)
    return {"status": _CHECK_STATUS[state], "failure_count": len(check_failures(site))
            if op is Op.PRECHECK and state == "done" else 0}


def check_failures(site: Site) -> list[dict[str, Any]]:
    """The pre-upgrade check findings of the inventory as UpgradeCheckFailures."""
    out: list[dict[str, Any]] = []
    for finding in (*site.inventory.errors, *site.inventory.warnings):
        origin = finding.unit or site.inventory.manager
        kind = site.component(origin) if origin in site.world.units else "MP"
        out.append({
            "id": finding.id,
            "type": "FAILURE" if finding.severity is Severity.ERROR else "WARNING",
            "component_type": kind, "origin_id": site.unit_ids.get(origin, origin),
            "origin_name": origin, "origin_type": "UPGRADE_UNIT",
            "message": {"error_code": 30500 + len(out), "message": finding.message or finding.id},
        })
    return out


def component_status(site: Site, comp: str, now: float) -> dict[str, Any]:
    """A ComponentUpgradeStatus."""
    names = site.component_units(comp)
    statuses = [unit_status(site, u, now) for u in names]
    kinds = [s["status"] for s in statuses]
    plan = site.plan
    done = kinds.count("SUCCESS")
    if not names:
        status = "SUCCESS"
    elif "IN_PROGRESS" in kinds:
        status = "PAUSING" if plan.component == comp and plan.state == "pausing" else "IN_PROGRESS"
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
    return {
        "component_type": comp, "status": status, "percent_complete": round(percent, 1),
        "details": f"{done} of {len(names)} upgrade units at {site.world.target}",
        "can_skip": status in ("FAILED", "PAUSED"),
        "pre_upgrade_status": check_status(site, Op.PRECHECK, now),
        "post_upgrade_status": check_status(site, Op.POSTCHECK, now),
    }


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


def status_summary(site: Site, now: float, component: str | None = None) -> dict[str, Any]:
    """An UpgradeStatus: components in upgrade order HOST, EDGE, CCP, MP."""
    everything = [component_status(site, c, now) for c in COMPONENTS]
    shown = [c for c in everything if component in (None, c["component_type"])]
    return {"overall_upgrade_status": overall_status(everything), "component_status": shown}


def summary(site: Site, now: float) -> dict[str, Any]:
    """An UpgradeSummary."""
    system_version = site.world.units[site.inventory.manager].version
    bundle = site.last_good_bundle(now)
    uc_done = site.uc_done(now)
    body: dict[str, Any] = {
        "system_version": system_version,
        "target_version": site.world.target if bundle else system_version,
        "upgrade_status": overall_status([component_status(site, c, now) for c in COMPONENTS]),
        "upgrade_coordinator_version": site.world.target if uc_done
        else str(site.inventory.version),
        "upgrade_coordinator_updated": uc_done,
        "component_target_versions": [
            {"component_type": c, "target_version": site.world.target} for c in COMPONENTS
        ] if bundle else [],
    }
    if bundle is not None:
        body["upgrade_bundle_file_name"] = bundle.name
    return body


def uc_status(site: Site, now: float) -> dict[str, Any]:
    """A UcUpgradeStatus."""
    state, detail = site.state(Op.COORDINATOR, COORDINATOR, now)
    return {"state": _UNIT_STATUS[state], "status": detail or _UNIT_STATUS[state],
            "progress_percentage": int(site.fraction(Op.COORDINATOR, COORDINATOR, now) * 100)
            if state == "running" else (100 if state == "done" else 0),
            "errors": [detail] if state == "failed" and detail else []}


def bundle_status(site: Site, bundle_id: str, now: float) -> dict[str, Any]:
    """An UpgradeBundleUploadStatus."""
    bundle = site.bundle(bundle_id)
    status, percent, detail = site.bundle_status(bundle, now)
    body: dict[str, Any] = {"status": status, "percent": percent, "detailed_status": detail,
                            "upgradeBundleType": "MUB"}
    if bundle.url:
        body["url"] = bundle.url
    return body


def bundle_info(site: Site, bundle_id: str, now: float) -> dict[str, Any]:
    """An UpgradeBundleInfo, plus the id, name and status (for finding an upload again)."""
    bundle = site.bundle(bundle_id)
    return {"bundle_id": bundle.id, "bundle_name": bundle.name, "url": bundle.url or "",
            "bundle_size": str(bundle.size), "status": site.bundle_status(bundle, now)[0]}


def cluster_status(site: Site, now: float) -> dict[str, Any]:
    """A ClusterStatus: the management cluster is stable only when the manager is ready."""
    phase = site.manager_phase(now)
    mgmt = "STABLE" if phase == "up" else "DEGRADED"
    controllers_busy = any(site.state(Op.UPGRADE, c, now)[0] == "running"
                           for c in site.inventory.controllers)
    return {"cluster_id": site.unit_ids[site.inventory.manager],
            "mgmt_cluster_status": {"status": mgmt},
            "control_cluster_status": {"status": "DEGRADED" if controllers_busy else "STABLE"},
            "overall_status": "STABLE" if mgmt == "STABLE" and not controllers_busy
            else "DEGRADED"}


def service_status(site: Site, service: str, now: float) -> dict[str, Any]:
    """A NodeServiceStatusProperties: services run once the manager is ready."""
    ready = site.manager_phase(now) == "up"
    return {"runtime_state": "running" if ready else "starting", "service": service}


def node(site: Site) -> dict[str, Any]:
    """A NodeProperties of the manager."""
    version = site.world.units[site.inventory.manager].version
    return {"node_version": version, "product_version": version,
            "hostname": site.inventory.manager, "fully_qualified_domain_name":
            site.inventory.manager}


def history(site: Site) -> dict[str, Any]:
    """The upgrade history: ``{"results": [UpgradeHistory, ...]}`` with target versions."""
    return listing(list(site.history))

