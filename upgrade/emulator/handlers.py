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

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from upgrade.core.model import Op
from upgrade.emulator import coordinator, views
from upgrade.emulator import groups as group_ops
from upgrade.emulator.coordinator import sync
from upgrade.emulator.layout import COMPONENTS, ApiError, Group
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


def _ok(body: dict[str, Any] | None = None) -> Response:
    return JSONResponse(body) if body is not None else Response(status_code=200)


def _page(request: Request, items: list[dict[str, Any]]) -> Response:
    size = request.query_params.get("page_size", "")
    cursor = request.query_params.get("cursor", "")
    return _ok(views.listing(items, cursor if _COUNT.fullmatch(cursor) else None,
                             int(size) if _COUNT.fullmatch(size) else None))


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
    return _ok(views.status_summary(site, sync(site), comp))


async def uc_upgrade_status(request: Request) -> Response:
    """GET /upgrade/uc-upgrade-status: the coordinator's own upgrade."""
    site = _site(request)
    return _ok(views.uc_status(site, sync(site)))


async def upgrade_action(request: Request) -> Response:
    """POST /upgrade?action=upgrade_uc|execute_pre_upgrade_checks|abort_pre_upgrade_checks."""
    site = _site(request)
    now = sync(site)
    action = request.query_params.get("action")
    if action == "upgrade_uc":
        site.upgrade_uc(now)
    elif action == "execute_pre_upgrade_checks":
        site.start_check(Op.PRECHECK, now)
    elif action == "abort_pre_upgrade_checks":
        pass  # the simulated checks are short; nothing to abort
    else:
        raise ApiError(400, 255, f"unknown action {action!r} for POST /api/v1/upgrade")
    return _ok()


async def component_action(request: Request) -> Response:
    """POST /upgrade/{component}?action=execute_post_upgrade_checks."""
    site = _site(request)
    _component(request.path_params["component"], required=True)
    if request.query_params.get("action") != "execute_post_upgrade_checks":
        raise ApiError(400, 255, "the only action here is execute_post_upgrade_checks")
    site.start_check(Op.POSTCHECK, sync(site))
    return _ok()


async def precheck_failures(request: Request) -> Response:
    """GET /upgrade/pre-upgrade-checks/failures: the inventory's health findings."""
    site = _site(request)
    sync(site)
    comp = _component(request.query_params.get("component_type"))
    return _page(request, [f for f in views.check_failures(site)
                           if comp in (None, f["component_type"])])


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
    return _ok(views.history(_site(request)))


# -- bundles ------------------------------------------------------------------------------


async def bundles(request: Request) -> Response:
    """GET /upgrade/bundles (list); POST {url} or ?action=upload (multipart file)."""
    site = _site(request)
    if request.method == "GET":
        now = sync(site)
        return _page(request, [views.bundle_info(site, b.id, now) for b in site.bundles])
    if request.query_params.get("action") == "upload":
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
    """GET /upgrade/bundles/{id}."""
    site = _site(request)
    return _ok(views.bundle_info(site, request.path_params["bundle_id"], sync(site)))


async def bundle_upload_status(request: Request) -> Response:
    """GET /upgrade/bundles/{id}/upload-status."""
    site = _site(request)
    return _ok(views.bundle_status(site, request.path_params["bundle_id"], sync(site)))


# -- groups, units, plan ------------------------------------------------------------------


async def unit_groups(request: Request) -> Response:
    """GET /upgrade/upgrade-unit-groups[?component_type=&summary=]; POST creates one."""
    site = _site(request)
    if request.method == "POST":
        return _ok(views.group(site, group_ops.create(site, await _json(request))))
    comp = _component(request.query_params.get("component_type"))
    summary_only = request.query_params.get("summary") == "true"
    return _page(request, [views.group(site, g, summary_only) for g in site.groups
                           if comp in (None, g.type)])


async def unit_group(request: Request) -> Response:
    """GET|PUT /upgrade/upgrade-unit-groups/{id}; POST ?action=add_upgrade_units|reorder."""
    site = _site(request)
    group = site.group(request.path_params["group_id"])
    if request.method == "PUT":
        group_ops.update(site, group, await _json(request))
    elif request.method == "POST":
        action = request.query_params.get("action")
        if action == "add_upgrade_units":
            group_ops.add_units(site, group, _ids(await _json(request)))
        elif action == "reorder":
            group_ops.reorder(site, group, await _json(request))
        else:
            raise ApiError(400, 255, f"unknown action {action!r} for an upgrade unit group")
    return _ok(views.group(site, group))


def _groups_page(request: Request, view: Callable[[Site, Group, float], dict[str, Any]]
                 ) -> Response:
    """A page of ``view`` over the groups, filtered by the optional ``component_type``."""
    site = _site(request)
    now = sync(site)
    comp = _component(request.query_params.get("component_type"))
    return _page(request, [view(site, g, now) for g in site.groups if comp in (None, g.type)])


async def aggregate_info(request: Request) -> Response:
    """GET /upgrade/upgrade-unit-groups/aggregate-info."""
    return _groups_page(request, views.aggregate_info)


async def groups_status(request: Request) -> Response:
    """GET /upgrade/upgrade-unit-groups-status."""
    return _groups_page(request, views.group_status)


async def group_units_status(request: Request) -> Response:
    """GET /upgrade/upgrade-unit-groups/{id}/upgrade-unit/status[?has_errors=]."""
    site = _site(request)
    now = sync(site)
    group = site.group(request.path_params["group_id"])
    items = [views.unit_status(site, u, now) for u in group.units]
    if request.query_params.get("has_errors") == "true":
        items = [i for i in items if i["errors"]]
    return _page(request, items)


async def units(request: Request) -> Response:
    """GET /upgrade/upgrade-units[?component_type=&group_id=&has_warnings=]."""
    site = _site(request)
    sync(site)
    q = request.query_params
    comp = _component(q.get("component_type"))
    items = [views.unit(site, u) for g in site.groups for u in g.units
             if comp in (None, g.type) and q.get("group_id") in (None, g.id)]
    if q.get("has_warnings") in ("true", "false"):
        items = [i for i in items if bool(i["warnings"]) == (q["has_warnings"] == "true")]
    return _page(request, items)


async def one_unit(request: Request) -> Response:
    """GET /upgrade/upgrade-units/{id}."""
    site = _site(request)
    sync(site)
    return _ok(views.unit(site, site.unit_name(request.path_params["unit_id"])))


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
    """POST /upgrade/plan?action=start|pause|continue|reset|upgrade_selected_units."""
    site = _site(request)
    now = sync(site)
    q = request.query_params
    action = q.get("action", "")
    if action == "upgrade_selected_units":
        site.upgrade_units([site.unit_name(i) for i in _ids(await _json(request))], now)
    else:
        comp = _component(q.get("component_type"))
        coordinator.plan_action(site, action, comp, q.get("skip") == "true", now)
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
    """GET /node/services/{service}/status: running once the manager is ready."""
    site = _site(request)
    return _ok(views.service_status(site, request.path_params["service"], sync(site)))


async def cluster_status(request: Request) -> Response:
    """GET /cluster/status: the management cluster is STABLE when the manager is ready."""
    site = _site(request)
    return _ok(views.cluster_status(site, sync(site)))


async def node(request: Request) -> Response:
    """GET /node: the manager's version."""
    site = _site(request)
    sync(site)
    return _ok(views.node(site))
