"""The endpoint handlers of the NSX-T Manager upgrade-API emulator (see :mod:`.app`).

Each handler brings the site to now (:func:`~upgrade.emulator.coordinator.sync`), reads
or changes it and answers with a documented body from :mod:`upgrade.emulator.views`;
failures are :class:`~upgrade.emulator.site.ApiError` s that the application turns into
NSX error bodies.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from upgrade.core.model import Op
from upgrade.emulator import coordinator, views
from upgrade.emulator import groups as group_ops
from upgrade.emulator.coordinator import sync
from upgrade.emulator.layout import COMPONENTS, SERVICES, ApiError, Group
from upgrade.emulator.limits import parse_object
from upgrade.emulator.site import Site

_FILE_PART = re.compile(rb'Content-Disposition:[^\r\n]*name="file"[^\r\n]*', re.IGNORECASE)
_FILENAME = re.compile(rb'filename="([^"]*)"')
#: a Host header worth repeating: a name or an address, and maybe a port
_HOST = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]{1,253})(?::([0-9]{1,5}))?")
#: page sizes and cursors are small non-negative integers
_COUNT = re.compile(r"[0-9]{1,9}")

# -- helpers ------------------------------------------------------------------------------


def _site(request: Request) -> Site:
    site: Site = request.app.state.site
    return site


async def _json(request: Request) -> dict[str, Any]:
    return parse_object(await request.body())


def _ids(body: dict[str, Any]) -> list[str]:
    items = body.get("list")
    if not isinstance(items, list) or not all(
            isinstance(i, dict) and isinstance(i.get("id"), str) for i in items):
        raise ApiError(400, 255, 'expected {"list": [{"id": "<upgrade unit id>"}, ...]}')
    return [i["id"] for i in items]


def _ok(body: dict[str, Any] | None = None, status: int = 200) -> Response:
    """``body`` as JSON, or no body at all (VMware's operations that return nothing)."""
    return JSONResponse(body, status) if body is not None else Response(status_code=status)


def _flag(request: Request, name: str) -> bool | None:
    """A boolean query parameter (None when absent); 400 when it is not one."""
    value = request.query_params.get(name)
    if value is None:
        return None
    if value.lower() not in ("true", "false"):
        raise ApiError(400, 255, f"query parameter {name} must be true or false, not {value!r}")
    return value.lower() == "true"


def _page(request: Request, items: list[dict[str, Any]]) -> Response:
    """A list result: ``sort_by``/``sort_ascending``, ``included_fields``, then the page
    (``page_size``, ``cursor``)."""
    q = request.query_params
    key = q.get("sort_by")
    if key:
        items = sorted(items, key=lambda i: (key not in i, str(i.get(key, ""))),
                       reverse=_flag(request, "sort_ascending") is False)
    fields = [f.strip() for f in q.get("included_fields", "").split(",") if f.strip()]
    if fields:
        items = [{k: v for k, v in i.items() if k in fields} for i in items]
    size = q.get("page_size", "")
    cursor = q.get("cursor", "")
    return _ok(views.listing(items, cursor if _COUNT.fullmatch(cursor) else None,
                             int(size) if _COUNT.fullmatch(size) else None))


def _selected(site: Site, request: Request, names: list[str]) -> list[str]:
    """``selection_status`` ALL (default), SELECTED (in enabled groups) or DESELECTED."""
    wanted = request.query_params.get("selection_status", "ALL")
    if wanted not in ("ALL", "SELECTED", "DESELECTED"):
        raise ApiError(400, 255, f"selection_status must be ALL, SELECTED or DESELECTED, "
                       f"not {wanted!r}")
    if wanted == "ALL":
        return names
    return [n for n in names if site.group_of(n).enabled == (wanted == "SELECTED")]


def _component(value: str | None, required: bool = False) -> str | None:
    if value is None and not required:
        return None
    if value not in COMPONENTS:
        raise ApiError(400, 255, f"component_type must be one of {', '.join(COMPONENTS)}, "
                       f"not {value!r}")
    return value


# -- upgrade: summary, coordinator, checks ------------------------------------------------


async def summary(request: Request) -> Response:
    """GET /upgrade/summary: versions, upgrade status, the last good bundle."""
    site = _site(request)
    return _ok(views.summary(site, sync(site)))


async def status_summary(request: Request) -> Response:
    """GET /upgrade/status-summary[?component_type=]: components HOST, EDGE, CCP, MP."""
    site = _site(request)
    comp = _component(request.query_params.get("component_type"))
    _selected(site, request, [])  # validates selection_status
    _flag(request, "show_history")  # the emulator keeps no per-component history
    selection = request.query_params.get("selection_status", "ALL")
    return _ok(views.status_summary(site, sync(site), comp, selection))


async def uc_upgrade_status(request: Request) -> Response:
    """GET /upgrade/uc-upgrade-status (2.5.1): the coordinator's own upgrade."""
    site = _site(request)
    return _ok(views.uc_status(site, sync(site)))


async def upgrade_action(request: Request) -> Response:
    """POST /upgrade?action=upgrade_uc; 2.5.1: also execute_pre_upgrade_checks (202) and
    abort_pre_upgrade_checks."""
    site = _site(request)
    now = sync(site)
    action = request.query_params.get("action")
    if action == "upgrade_uc":
        site.upgrade_uc(now)
        return _ok()
    if site.v25 and action == "execute_pre_upgrade_checks":
        site.start_check(Op.PRECHECK, now)
        return _ok(status=202)
    if site.v25 and action == "abort_pre_upgrade_checks":
        return _ok()  # the simulated checks are short; nothing to abort
    raise ApiError(400, 255, f"unknown action {action!r} for POST /api/v1/upgrade")


async def component_action(request: Request) -> Response:
    """POST /upgrade/{component-type}?action=execute_post_upgrade_checks (2.5.1; 202)."""
    site = _site(request)
    comp = _component(request.path_params["component"], required=True)
    if request.query_params.get("action") != "execute_post_upgrade_checks":
        raise ApiError(400, 255, "the only action here is execute_post_upgrade_checks")
    if comp is not None and not site.served(comp):
        raise ApiError(400, 30046, f"NSX-T {site.world.target} has no {comp} component "
                       f"(its upgrade: {', '.join(site.components)})")
    site.start_check(Op.POSTCHECK, sync(site))
    return _ok(status=202)


async def functional_state(request: Request) -> Response:
    """GET /upgrade/functional-state (2.5.1): the coordinator runs."""
    sync(_site(request))
    return _ok({"state": "RUNNING"})


async def checks_info(request: Request) -> Response:
    """GET /upgrade/upgrade-checks-info (2.5.1): the checks each component has."""
    comp = _component(request.query_params.get("component_type"))
    return _page(request, [
        {"component_type": c,
         "pre_upgrade_checks_info": [{"name": "health", "component_type": c,
                                      "description": "the unit reports no health problem"}],
         "post_upgrade_checks_info": []}
        for c in _site(request).components if comp in (None, c)])


async def eula_accept(request: Request) -> Response:
    """POST /upgrade/eula/accept."""
    _site(request).eula_accepted = True
    return _ok()


async def eula_acceptance(request: Request) -> Response:
    """GET /upgrade/eula/acceptance."""
    return _ok({"acceptance": _site(request).eula_accepted})


async def eula_content(request: Request) -> Response:
    """GET /upgrade/eula/content."""
    return _ok({"content": "<p>NSX-T upgrade emulator: no licence terms apply.</p>"})


async def history(request: Request) -> Response:
    """GET /upgrade/history: upgrades started and finished, with target versions."""
    return _page(request, list(_site(request).history))


# -- bundles ------------------------------------------------------------------------------


async def bundles(request: Request) -> Response:
    """POST /upgrade/bundles {url}, or ?action=upload (multipart file); no GET (VMware
    has no list of bundles)."""
    site = _site(request)
    action = request.query_params.get("action")
    if action not in (None, "upload"):
        raise ApiError(400, 255, f"unknown action {action!r} for POST /api/v1/upgrade/bundles")
    if action == "upload":
        name, size = await _receive_file(request)
        url = None
    else:
        body = await _json(request)
        url = body.get("url")
        if not isinstance(url, str) or not url:
            raise ApiError(400, 255, 'expected {"url": "<where the bundle is>"}')
        name, size = url.rstrip("/").rsplit("/", 1)[-1], 0
    bundle = site.add_bundle(name, url, size, sync(site))
    return _ok({"bundle_id": bundle.id})


async def _receive_file(request: Request) -> tuple[str, int]:
    if "multipart/form-data" not in request.headers.get("content-type", ""):
        raise ApiError(400, 255, "upload the bundle as multipart/form-data with a part named file")
    head, size = b"", 0
    try:
        async for chunk in request.stream():
            if len(head) < 65536:
                head += chunk[: 65536 - len(head)]
            size += len(chunk)
    except ClientDisconnect as exc:
        raise ApiError(400, 255, "the upload was interrupted") from exc
    part = _FILE_PART.search(head)
    if part is None:
        raise ApiError(400, 255, "the upload has no part named file")
    name = _FILENAME.search(part.group(0))
    return (name.group(1).decode(errors="replace") if name else "bundle.mub"), size


async def bundle_info(request: Request) -> Response:
    """GET /upgrade/bundles/{id}; 2.5.1: POST ?action=cancel_upload (no body)."""
    site = _site(request)
    now = sync(site)
    bundle = site.bundle(request.path_params["bundle_id"])
    if request.method == "POST":
        if request.query_params.get("action") != "cancel_upload":
            raise ApiError(400, 255, "the only action here is cancel_upload")
        site.cancel_upload(bundle, now)
        return _ok()
    return _ok(views.bundle_info(site, bundle.id, now))


async def bundle_upload_status(request: Request) -> Response:
    """GET /upgrade/bundles/{id}/upload-status."""
    site = _site(request)
    return _ok(views.bundle_status(site, request.path_params["bundle_id"], sync(site)))


# -- groups, units, plan ------------------------------------------------------------------


async def unit_groups(request: Request) -> Response:
    """GET /upgrade/upgrade-unit-groups[?component_type=&summary=&sync=]; POST creates one
    (201)."""
    site = _site(request)
    if request.method == "POST":
        return _ok(views.group(site, group_ops.create(site, await _json(request))), 201)
    sync(site)
    comp = _component(request.query_params.get("component_type"))
    summary_only = bool(_flag(request, "summary"))
    _flag(request, "sync")  # the emulated groups are always in sync
    return _page(request, [views.group(site, g, summary_only) for g in site.groups
                           if comp in (None, g.type)])


async def unit_group(request: Request) -> Response:
    """GET|PUT|DELETE /upgrade/upgrade-unit-groups/{id}; POST ?action=add_upgrade_units
    (an UpgradeUnitList of the units added) or reorder (no body)."""
    site = _site(request)
    sync(site)
    group = site.group(request.path_params["group_id"])
    if request.method == "DELETE":
        group_ops.delete(site, group)
        return _ok()
    if request.method == "PUT":
        group_ops.update(site, group, await _json(request))
    elif request.method == "POST":
        action = request.query_params.get("action")
        if action == "add_upgrade_units":
            names = group_ops.add_units(site, group, _units(await _json(request)))
            return _ok({"list": [views.unit(site, n) for n in names]})
        if action == "reorder":
            group_ops.reorder(site, group, await _json(request))
            return _ok()
        raise ApiError(400, 255, f"unknown action {action!r} for an upgrade unit group")
    return _ok(views.group(site, group, bool(_flag(request, "summary"))))


def _units(body: dict[str, Any]) -> list[str]:
    """The unit ids of an UpgradeUnitList ``{"list": [{"id": ...}, ...]}``."""
    return _ids(body)


async def unit_reorder(request: Request) -> Response:
    """POST /upgrade/upgrade-unit-groups/{group-id}/upgrade-unit/{unit-id}?action=reorder."""
    site = _site(request)
    sync(site)
    group = site.group(request.path_params["group_id"])
    if request.query_params.get("action") != "reorder":
        raise ApiError(400, 255, "the only action here is reorder")
    group_ops.reorder_unit(site, group, site.unit_name(request.path_params["unit_id"]),
                           await _json(request))
    return _ok()


def _groups_page(request: Request, view: Callable[[Site, Group, float], dict[str, Any]]
                 ) -> Response:
    """A page of ``view`` over the groups, filtered by the optional ``component_type``."""
    site = _site(request)
    now = sync(site)
    comp = _component(request.query_params.get("component_type"))
    for name in ("summary", "sync"):
        _flag(request, name)
    return _page(request, [view(site, g, now) for g in site.groups if comp in (None, g.type)])


async def aggregate_info(request: Request) -> Response:
    """GET /upgrade/upgrade-unit-groups/aggregate-info."""
    return _groups_page(request, views.aggregate_info)


async def groups_status(request: Request) -> Response:
    """GET /upgrade/upgrade-unit-groups-status."""
    return _groups_page(request, views.group_status)


async def group_status(request: Request) -> Response:
    """GET /upgrade/upgrade-unit-groups/{group-id}/status[?has_errors=]: UpgradeUnitStatus
    of each of its units."""
    site = _site(request)
    now = sync(site)
    group = site.group(request.path_params["group_id"])
    items = [views.unit_status(site, u, now) for u in group.units]
    if _flag(request, "has_errors") is not None:
        items = [i for i in items if bool(i["errors"]) == _flag(request, "has_errors")]
    return _page(request, items)


def _unit_names(site: Site, request: Request) -> list[str]:
    """The units in plan order, filtered by component_type, group_id, upgrade_unit_type,
    current_version, metadata (``key:value``) and selection_status."""
    q = request.query_params
    comp = _component(q.get("component_type"))
    kind = q.get("upgrade_unit_type")
    names = [u for g in site.groups for u in g.units
             if comp in (None, g.type) and kind in (None, g.type)
             and q.get("group_id") in (None, g.id)
             and q.get("current_version") in (None, site.world.units[u].version)]
    meta = q.get("metadata")
    if meta is not None:
        key, _, value = meta.partition(":")
        names = [n for n in names if key == "group" and site.world.units[n].group == value]
    return _selected(site, request, names)


async def units(request: Request) -> Response:
    """GET /upgrade/upgrade-units[?component_type=&group_id=&has_warnings=&
    upgrade_unit_type=&current_version=&metadata=]."""
    site = _site(request)
    sync(site)
    items = [views.unit(site, u) for u in _unit_names(site, request)]
    warned = _flag(request, "has_warnings")
    if warned is not None:
        items = [i for i in items if bool(i["warnings"]) == warned]
    return _page(request, items)


async def units_aggregate(request: Request) -> Response:
    """GET /upgrade/upgrade-units/aggregate-info[?component_type=&group_id=&has_errors=&
    selection_status=&metadata=] (2.5.1: &upgrade_unit_display_name=)."""
    site = _site(request)
    now = sync(site)
    names = _unit_names(site, request)
    shown = request.query_params.get("upgrade_unit_display_name")
    if site.v25 and shown is not None:
        names = [n for n in names if n == shown]
    items = [views.unit_aggregate(site, n, now) for n in names]
    errors = _flag(request, "has_errors")
    if errors is not None:
        items = [i for i in items if bool(i["errors"]) == errors]
    return _page(request, items)


async def units_stats(request: Request) -> Response:
    """GET /upgrade/upgrade-units-stats[?sync=]."""
    site = _site(request)
    sync(site)
    _flag(request, "sync")
    stats = views.units_stats(site)
    return _ok(views.listing(stats) if site.v25 else {"results": stats})


async def one_unit(request: Request) -> Response:
    """GET /upgrade/upgrade-units/{id}."""
    site = _site(request)
    sync(site)
    return _ok(views.unit(site, site.unit_name(request.path_params["unit_id"])))


async def nodes(request: Request) -> Response:
    """GET /upgrade/nodes[?component_type=&component_version=]."""
    site = _site(request)
    sync(site)
    comp = _component(request.query_params.get("component_type"))
    version = request.query_params.get("component_version")
    return _page(request, [n for n in views.nodes(site) if comp in (None, n["type"])
                           and version in (None, n["component_version"])])


async def nodes_summary(request: Request) -> Response:
    """GET /upgrade/nodes-summary."""
    site = _site(request)
    sync(site)
    return _ok(views.nodes_summary(site))


async def version_whitelist(request: Request) -> Response:
    """GET /upgrade/version-whitelist."""
    site = _site(request)
    return _ok({"results": [views.whitelist(site, c) for c in site.components]})


async def component_whitelist(request: Request) -> Response:
    """GET|PUT /upgrade/version-whitelist/{component_type} (PUT: a VersionList; no body)."""
    site = _site(request)
    comp = _component(request.path_params["component"], required=True)
    assert comp is not None
    if request.method == "PUT":
        versions = (await _json(request)).get("acceptable_versions")
        if not isinstance(versions, list) or not all(isinstance(v, str) for v in versions):
            raise ApiError(400, 255, 'expected {"acceptable_versions": ["2.1.0.0", ...]}')
        site.whitelist[comp] = list(versions)
        return _ok()
    return _ok(views.whitelist(site, comp))


async def plan_settings(request: Request) -> Response:
    """GET|PUT /upgrade/plan/{component}/settings."""
    site = _site(request)
    comp = _component(request.path_params["component"], required=True)
    assert comp is not None
    if request.method == "PUT":
        group_ops.set_settings(site, comp, await _json(request))
    s = site.settings[comp]
    return _ok({"parallel": s.parallel, "pause_on_error": s.pause_on_error,
                "pause_after_each_group": s.pause_after_each_group})


async def plan(request: Request) -> Response:
    """POST /upgrade/plan?action=start|pause|continue[&skip=]|reset&component_type=|
    upgrade_selected_units."""
    site = _site(request)
    now = sync(site)
    q = request.query_params
    action = q.get("action", "")
    if action == "upgrade_selected_units":
        site.upgrade_units([site.unit_name(i) for i in _ids(await _json(request))], now)
    else:
        comp = _component(q.get("component_type"))
        coordinator.plan_action(site, action, comp, bool(_flag(request, "skip")), now)
    return _ok()


# -- node and cluster ---------------------------------------------------------------------


async def install_upgrade(request: Request) -> Response:
    """GET /node/services/install-upgrade: enabled_on is the address the client used.

    Clients build ``https://{enabled_on}/api/v1`` from it, so it carries the port
    unless that is 443: the Host header's, else the one the emulator listens on.
    """
    return _ok({"service_name": "install-upgrade",
                "service_properties": {"enabled": True, "enabled_on": _address(request)}})


def _address(request: Request) -> str:
    match = _HOST.fullmatch(request.headers.get("host", ""))
    if match is not None:  # as the client wrote it (no port: it reached us without one)
        host, port = match.group(1), match.group(2)
    else:  # no usable Host header: where the emulator listens
        host, port = "127.0.0.1", request.app.state.public_port
    return host if port in (None, "443", 443) else f"{host}:{port}"


async def service_status(request: Request) -> Response:
    """GET /node/services/{service}/status (VMware's service names only): running once the
    manager is ready."""
    site = _site(request)
    if request.path_params["service"] not in SERVICES[site.api]:
        raise HTTPException(404)
    return _ok(views.service_status(site, sync(site)))


async def cluster_status(request: Request) -> Response:
    """GET /cluster/status: the management cluster is STABLE when the manager is ready."""
    site = _site(request)
    return _ok(views.cluster_status(site, sync(site)))


async def node(request: Request) -> Response:
    """GET /node: the manager's version."""
    site = _site(request)
    sync(site)
    return _ok(views.node(site))
