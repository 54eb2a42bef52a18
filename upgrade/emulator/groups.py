"""Changes to the emulated coordinator's plan: groups (create, update, add units, reorder)
and per-component settings, with the API's validation and ``_revision`` checks."""

from __future__ import annotations

from typing import Any

from upgrade.emulator.layout import COMPONENTS, ApiError, Group, Settings, stable_id
from upgrade.emulator.site import Site


def _bool(body: dict[str, Any], key: str, default: bool) -> bool:
    value = body.get(key, default)
    if not isinstance(value, bool):
        raise ApiError(400, 255, f"{key} must be true or false, not {value!r}")
    return value


def _move(site: Site, group: Group, names: list[str]) -> None:
    for name in names:
        if site.component(name) != group.type:
            raise ApiError(400, 30040, f"upgrade unit {name} is a {site.component(name)} unit; "
                           f"group {group.name} holds {group.type} units")
    for g in site.groups:
        if g is not group:
            g.units = [u for u in g.units if u not in names]
    group.units += [n for n in names if n not in group.units]


def create(site: Site, body: dict[str, Any]) -> Group:
    """``POST /upgrade/upgrade-unit-groups``: a new group, taking its units from others."""
    name, kind = body.get("display_name"), body.get("type")
    if not isinstance(name, str) or not name or kind not in COMPONENTS:
        raise ApiError(400, 255, "a group needs display_name and type HOST|EDGE|CCP|MP")
    if any(g.name == name and g.type == kind for g in site.groups):
        raise ApiError(400, 30041, f"a {kind} group called {name} already exists")
    group = Group(stable_id("group", f"{kind}:{name}"), name, kind, [],
                  parallel=_bool(body, "parallel", True), enabled=_bool(body, "enabled", True),
                  extended=list(body.get("extended_configuration") or []))
    units = [site.unit_name(str(u.get("id"))) for u in body.get("upgrade_units") or []]
    _move(site, group, units)
    last = max((i for i, g in enumerate(site.groups) if g.type == kind), default=len(site.groups))
    site.groups.insert(last + 1, group)
    return group


def update(site: Site, group: Group, body: dict[str, Any]) -> None:
    """``PUT /upgrade/upgrade-unit-groups/{id}``: name, parallel, enabled, extended config."""
    revision = body.get("_revision")
    if revision is not None and revision != group.revision:
        raise ApiError(412, 604, f"group {group.name} was modified meanwhile: _revision is "
                       f"{group.revision}, not {revision}; read it again")
    if isinstance(body.get("display_name"), str) and body["display_name"]:
        group.name = body["display_name"]
    group.parallel = _bool(body, "parallel", group.parallel)
    group.enabled = _bool(body, "enabled", group.enabled)
    if "extended_configuration" in body:
        group.extended = list(body["extended_configuration"] or [])
    if "upgrade_units" in body:
        _move(site, group, [site.unit_name(str(u.get("id"))) for u in body["upgrade_units"]])
    group.revision += 1


def add_units(site: Site, group: Group, ids: list[str]) -> None:
    """``action=add_upgrade_units``: move units into ``group``."""
    _move(site, group, [site.unit_name(i) for i in ids])
    group.revision += 1


def reorder(site: Site, group: Group, body: dict[str, Any]) -> None:
    """``action=reorder`` ``{"id": other group, "is_before": bool}``."""
    other = site.group(str(body.get("id")))
    if other.type != group.type or other is group:
        raise ApiError(400, 30042, "reorder a group relative to another group of its type")
    site.groups.remove(group)
    at = site.groups.index(other)
    site.groups.insert(at if _bool(body, "is_before", True) else at + 1, group)


def set_settings(site: Site, component: str, body: dict[str, Any]) -> None:
    """``PUT /upgrade/plan/{component}/settings``."""
    old = site.settings[component]
    site.settings[component] = Settings(
        parallel=_bool(body, "parallel", old.parallel),
        pause_on_error=_bool(body, "pause_on_error", old.pause_on_error),
        pause_after_each_group=_bool(body, "pause_after_each_group", old.pause_after_each_group),
    )
