"""The engine's state as plain, JSON-ready data, and an engine rebuilt from it (pure).

A snapshot holds what a fresh :class:`~upgrade.core.engine.core.Engine` over the same plan,
inventory and policy does not already know: the phase machine's state, every engine
attribute that differs from the fresh one (dicts as their changed and removed entries),
and every work item's and group's fields that differ.  Values are tagged so that they
come back with their types: tuples ``{"$t": [...]}``, sets ``{"$s": [...]}`` (sorted),
dicts ``{"$d": [[key, value], ...]}`` (keys of any type, order kept), enums
``{"$e": "module:Class", "v": value}`` (but a :class:`~.state.Stop` and a
:class:`~.items.Waiting` are their plain strings, retyped from the field they restore),
frozen dataclasses ``{"$c": "module:Class", "f": [...]}`` and floats JSON cannot hold
``{"$f": "inf"}``; the few distinct item pipelines are stored once (``pipelines``) and
referred to as ``{"$p": index}``.  Only classes of the ``upgrade`` package are ever rebuilt.

Attributes added to the engine later are snapshotted too (if their values are of these
kinds; anything else raises ``TypeError``), so a snapshot stays complete as the engine grows.
A helper object of the engine's (the canary, window and budget gates) names the fields
that change during a run in a ``STATE`` class attribute; only those are kept
(``{"$o": {field: value}}``) and set on the fresh engine's own object when restored.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import json
import math
import weakref
from enum import Enum
from typing import TYPE_CHECKING, Any

from upgrade.core.engine.items import Group, Item, Waiting
from upgrade.core.engine.machines import RunState
from upgrade.core.engine.state import Stop

if TYPE_CHECKING:
    from upgrade.core.engine.core import Engine

#: bump when the layout changes; a snapshot of another version is ignored (replayed instead)
VERSION = 1
#: engine attributes fixed by the plan, inventory and policy, or saved separately
_STATIC = frozenset({"plan", "inventory", "policy", "lifecycles", "machine", "timing",
                     "items", "groups", "_cluster"})
_GROUP_FIXED = frozenset({"items", "name", "max_parallel", "single_cluster"})
#: engine attributes derived from the plan, items and groups: rebuilt on restore, never
#: stored (``_idle`` only lives from one event to the end of its handling)
_DERIVED = frozenset({"_failed_in", "_first_open", "_parallel_groups", "_idle"})
#: enums a snapshot holds as their plain string (as it did before they were enums)
_PLAIN = (Stop, Waiting)

_fresh: weakref.WeakKeyDictionary[Engine, Engine] = weakref.WeakKeyDictionary()


def _slots(cls: type) -> list[str]:
    names: list[str] = []
    for klass in reversed(cls.__mro__):
        names += [s for s in getattr(klass, "__slots__", ()) if s not in names]
    return names


_ITEM_SLOTS = [s for s in _slots(Item) if s != "id"]
_GROUP_SLOTS = [s for s in _slots(Group) if s not in _GROUP_FIXED]


def _name(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


@functools.cache  # a snapshot or a recorded inventory names a few classes many times
def _class(name: str) -> type:
    module, _, qualname = name.partition(":")
    if module != "upgrade" and not module.startswith("upgrade."):
        raise ValueError(f"snapshot names a class outside nsxt-upgrade: {name}")
    found: Any = importlib.import_module(module)
    for part in qualname.split("."):
        found = getattr(found, part)
    assert isinstance(found, type)
    return found


def enc(value: Any) -> Any:
    """``value`` as tagged JSON-ready data."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value  # the most common values first: a snapshot holds hundreds of thousands
    if kind is float and math.isfinite(value):
        return value
    if isinstance(value, _PLAIN):
        return value.value
    if isinstance(value, Enum):  # first: some enums are also str
        return {"$e": _name(type(value)), "v": value.value}
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {"$f": repr(value)}
    if isinstance(value, list):
        return [enc(v) for v in value]
    if isinstance(value, tuple):
        return {"$t": [enc(v) for v in value]}
    if isinstance(value, set | frozenset):
        items = [enc(v) for v in value]
        return {"$s": sorted(items, key=lambda v: json.dumps(v, sort_keys=True))}
    if isinstance(value, dict):
        return {"$d": [[enc(k), enc(v)] for k, v in value.items()]}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {"$c": _name(type(value)),
                "f": [enc(getattr(value, f.name)) for f in dataclasses.fields(value)]}
    raise TypeError(f"cannot snapshot a {type(value).__name__}: {value!r}")


def dec(data: Any) -> Any:
    """The value :func:`enc` made ``data`` from."""
    if isinstance(data, list):
        return [dec(v) for v in data]
    if not isinstance(data, dict):
        return data
    if "$t" in data:
        return tuple(dec(v) for v in data["$t"])
    if "$s" in data:
        return {dec(v) for v in data["$s"]}
    if "$d" in data:
        return {_key(dec(k)): dec(v) for k, v in data["$d"]}
    if "$e" in data:
        return _class(data["$e"])(data["v"])
    if "$c" in data:
        return _class(data["$c"])(*(dec(v) for v in data["f"]))
    if "$f" in data:
        return float(data["$f"])
    raise ValueError(f"not snapshot data: {data!r}")


def _retyped(was: Any, value: Any) -> Any:
    """``value`` as the plain enum ``was`` is, if it is one (see ``_PLAIN``)."""
    return type(was)(value) if isinstance(was, _PLAIN) else value


def _key(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _baseline(engine: Engine) -> Engine:
    """A fresh engine over the same plan, inventory and policy (cached per engine)."""
    fresh = _fresh.get(engine)
    if fresh is None:
        fresh = type(engine)(engine.plan, engine.inventory, engine.policy)
        _fresh[engine] = fresh
    return fresh


def _diff_dict(now: dict[Any, Any], was: dict[Any, Any]) -> Any:
    changed = [(k, v) for k, v in now.items() if k not in was or was[k] != v]
    removed = [k for k in was if k not in now]
    gone = set(removed)
    order = [k for k in was if k not in gone] + [k for k, _ in changed if k not in was]
    if list(now) != order:  # the restored dict would iterate differently: keep it whole
        return enc(now)
    return {"$dd": [[enc(k), enc(v)] for k, v in changed], "rm": [enc(k) for k in removed]}


def take(engine: Engine, baseline: Engine | None = None) -> dict[str, Any]:
    """The snapshot of ``engine`` (see the module docstring); ``baseline``, if given, a fresh
    engine over the same plan, inventory and policy, never fed an event (else one is made)."""
    fresh = baseline if baseline is not None else _baseline(engine)
    attrs: dict[str, Any] = {}
    for name, value in vars(engine).items():
        if name in _STATIC or name in _DERIVED:
            continue
        was = getattr(fresh, name, _MISSING)
        if was is not _MISSING and type(was) is type(value) and was == value:
            continue
        if isinstance(value, dict) and isinstance(was, dict):
            attrs[name] = _diff_dict(value, was)
        elif hasattr(type(value), "STATE"):
            fields = {f: enc(getattr(value, f)) for f in type(value).STATE
                      if getattr(value, f) != getattr(was, f)}
            if fields:
                attrs[name] = {"$o": fields}
        else:
            attrs[name] = enc(value)
    items: dict[str, Any] = {}
    pipelines: dict[Any, int] = {}  # few distinct pipelines: stored once, referred to
    for ident, item in engine.items.items():
        base = fresh.items[ident]
        fields = {}
        for name in _ITEM_SLOTS:
            value = getattr(item, name)
            was = getattr(base, name)
            if value is was or value == was:
                continue
            if name == "pipeline":
                fields[name] = {"$p": pipelines.setdefault(value, len(pipelines))}
            else:
                fields[name] = enc(value)
        if fields:
            items[ident] = fields
    groups: dict[str, Any] = {}
    for phase, phase_groups in engine.groups.items():
        for index, (group, fresh_group) in enumerate(zip(phase_groups, fresh.groups[phase],
                                                         strict=True)):
            changed = {s: enc(getattr(group, s)) for s in _GROUP_SLOTS
                       if getattr(group, s) != getattr(fresh_group, s)}
            if changed:
                groups[f"{phase.value}|{index}"] = changed
    if engine.phase is not fresh.phase:  # the phase machine's, kept where the engine's was
        attrs["phase"] = enc(engine.phase)
    return {"version": VERSION, "state": engine.machine.state.value, "engine": attrs,
            "items": items, "groups": groups, "pipelines": [enc(p) for p in pipelines]}


_MISSING = object()


def restore(engine: Engine, data: dict[str, Any]) -> Engine:
    """Put a fresh ``engine`` (never fed an event) in the state ``data`` was taken in."""
    if data.get("version") != VERSION:
        raise ValueError(f"snapshot version {data.get('version')!r}, not {VERSION}")
    attrs = dict(data["engine"])
    phase = dec(attrs.pop("phase")) if "phase" in attrs else engine.phase
    engine.machine.restore(RunState(data["state"]), phase)
    for name, value in attrs.items():
        if isinstance(value, dict) and "$o" in value:
            target = getattr(engine, name)
            for field, entry in value["$o"].items():
                setattr(target, field, dec(entry))
        elif isinstance(value, dict) and "$dd" in value:
            target = getattr(engine, name)
            for key in value["rm"]:
                del target[_key(dec(key))]
            for key, entry in value["$dd"]:
                target[_key(dec(key))] = dec(entry)
        else:
            setattr(engine, name, _retyped(getattr(engine, name, None), dec(value)))
    pipelines = [dec(p) for p in data.get("pipelines", ())]
    for ident, fields in data["items"].items():
        item = engine.items[ident]
        for name, value in fields.items():
            if isinstance(value, dict) and "$p" in value:
                setattr(item, name, pipelines[value["$p"]])
            else:
                setattr(item, name, _retyped(getattr(item, name), dec(value)))
    by_value = {phase.value: groups for phase, groups in engine.groups.items()}
    for key, fields in data["groups"].items():
        phase, _, index = key.partition("|")
        group = by_value[phase][int(index)]
        for name, value in fields.items():
            setattr(group, name, dec(value))
    engine._recount()
    return engine
