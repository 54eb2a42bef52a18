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


def _unit_names(site: Site, body: dict[str, Any]) -> list[str]:
    items = body.get("upgrade_units") or []
    if not isinstance(items, list) or not all(
            isinstance(u, dict) and isinstance(u.get("id"), str) for u in items):
        raise ApiError(400, 255, 'upgrade_units must be [{"id": "<upgrade unit id>"}, ...]')
    return [site.unit_name(u["id"]) for u in items]


def _extended(body: dict[str, Any]) -> list[dict[str, str]]:
    items = body.get("extended_configuration") or []
    if not isinstance(items, list) or not all(
            isinstance(i, dict) and isinstance(i.get("key"), str)
            and isinstance(i.get("value"), str) for i in items):
        raise ApiError(400, 255, 'extended_configuration must be [{"key": "...", '
                       '"value": "..."}, ...]')
    return [{"key": i["key"], "value": i["value"]} for i in items]


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
    if not site.served(kind):
        raise ApiError(400, 30045, f"NSX-T {site.world.target} has no {kind} component "
                       f"(its upgrade: {', '.join(site.components)})")
    if any(g.name == name and g.type == kind for g in site.groups):
        raise ApiError(400, 30041, f"a {kind} group called {name} already exists")
    group = Group(stable_id("group", f"{kind}:{name}"), name, kind, [],
                  parallel=_bool(body, "parallel", True), enabled=_bool(body, "enabled", True),
                  extended=_extended(body))
    _move(site, group, _unit_names(site, body))
    last = max((i for i, g in enumerate(site.groups) if g.type == kind), default=len(site.groups))
    site.groups.insert(last + 1, group)
    return group


def update(site: Site, group: Group, body: dict[str, Any]) -> None:
    """``PUT /upgrade/upgrade-unit-groups/{id}``: name, parallel, enabled, extended config."""
    revision = body.get("_revision")
    if revision is not None and revision != group.revision:
        raise ApiError(412, 604, f"group {group.name} was modified meanwhile: _revision is "
                       f"{group.revision}, not {revision}; read it again")
    name = body.get("display_name", group.name)
    if not isinstance(name, str) or not name:
        raise ApiError(400, 255, "display_name must be a non-empty string")
    parallel = _bool(body, "parallel", group.parallel)
    enabled = _bool(body, "enabled", group.enabled)
    extended = _extended(body) if "extended_configuration" in body else group.extended
    units = _unit_names(site, body) if "upgrade_units" in body else None
    if units is not None:
        _move(site, group, units)  # checks every unit before it moves any
    group.name, group.parallel, group.enabled, group.extended = name, parallel, enabled, extended
    group.revision += 1


def add_units(site: Site, group: Group, ids: list[str]) -> list[str]:
    """``action=add_upgrade_units``: move units into ``group``; the units' names."""
    names = [site.unit_name(i) for i in ids]
    _move(site, group, names)
    group.revision += 1
    return names


def delete(site: Site, group: Group) -> None:
    """``DELETE /upgrade/upgrade-unit-groups/{id}``: only an empty group (the emulator does
    not invent a home for the units of a deleted one)."""
    if group.units:
        raise ApiError(400, 30043, f"group {group.name} still holds {len(group.units)} upgrade "
                       "units: move them to another group first")
    site.groups.remove(group)


def reorder_unit(site: Site, group: Group, name: str, body: dict[str, Any]) -> None:
    """``.../upgrade-unit/{id}?action=reorder`` ``{"id": other unit, "is_before": bool}``."""
    if not isinstance(body.get("id"), str):
        raise ApiError(400, 255, 'expected {"id": "<upgrade unit id>", "is_before": true}')
    other = site.unit_name(body["id"])
    if name not in group.units or other not in group.units or other == name:
        raise ApiError(400, 30044, f"reorder a unit of group {group.name} relative to "
                       "another unit of that group")
    group.units.remove(name)
    at = group.units.index(other)
    group.units.insert(at if _bool(body, "is_before", True) else at + 1, name)
    group.revision += 1


def reorder(site: Site, group: Group, body: dict[str, Any]) -> None:
    """``action=reorder`` ``{"id": other group, "is_before": bool}``."""
    if not isinstance(body.get("id"), str):
        raise ApiError(400, 255, 'expected {"id": "<upgrade unit group id>", "is_before": true}')
    other = site.group(body["id"])
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
