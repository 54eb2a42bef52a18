"""The engine's state as plain, JSON-ready data, and an engine rebuilt from it (pure).

A snapshot (version 2) holds what a fresh engine over the same plan, inventory and policy
does not already know::

    {"version": 2, "state": RUN STATE, "phase": PHASE (when not the first),
     "parts": {PART: {FIELD: VALUE}}, "items": {ID: {SLOT: VALUE}},
     "groups": {"PHASE|INDEX": {SLOT: VALUE}}, "pipelines": [PIPELINE, ...]}

Each part of the engine (``run``: the ledger, ``capacity``, ``canary``, ``window``,
``budget``) names the fields that change during a run in a ``STATE`` class attribute; a
field is kept where it differs from the fresh engine's (dicts as their changed and removed
entries, ``{"$dd": [[key, value], ...], "rm": [key, ...]}``), as are the work items' and
groups' slots.  Values are tagged (:mod:`.tagged`); the few distinct item pipelines are
stored once and referred to as ``{"$p": index}``.

Version 1 (the engine as one object: its attributes by name) is still read: :func:`migrate`
translates it (:mod:`.snapshot_v1`), so a state directory of an earlier version resumes
from its snapshot and ``verify`` checks it.
"""

from __future__ import annotations

import weakref
from operator import attrgetter
from typing import Any, Protocol, TypeVar

from upgrade.core.engine.items import Group, Item
from upgrade.core.engine.machines import PhaseMachine, RunState
from upgrade.core.engine.snapshot_v1 import from_v1
from upgrade.core.engine.tagged import as_key, dec, enc, retyped
from upgrade.core.plan import Phase

__all__ = ["READABLE", "VERSION", "dec", "enc", "migrate", "readable", "restore", "take"]

#: the layout written; bump when it changes, and teach :func:`migrate` the one before
VERSION = 2
#: the layouts read (another is ignored: the journal is replayed instead)
READABLE = (1, 2)
_GROUP_FIXED = frozenset({"items", "name", "max_parallel", "single_cluster"})


class Snapshotted(Protocol):
    """What a snapshot reads of an engine, and sets on a fresh one."""

    @property
    def items(self) -> dict[str, Item]: ...

    @property
    def groups(self) -> dict[Phase, list[Group]]: ...

    @property
    def machine(self) -> PhaseMachine: ...

    @property
    def phase(self) -> Phase: ...

    def parts(self) -> dict[str, Any]: ...

    def fresh(self) -> Snapshotted: ...

    def recount(self) -> None: ...


E = TypeVar("E", bound=Snapshotted)

_fresh: weakref.WeakKeyDictionary[Snapshotted, Snapshotted] = weakref.WeakKeyDictionary()
#: per engine, per item: its slot values at the last snapshot and the fields they gave
#: (besides the pipeline); an item whose values are the same gives the same fields again
_memo: weakref.WeakKeyDictionary[Snapshotted, dict[str, tuple[tuple[Any, ...],
                                                               dict[str, Any]]]] = \
    weakref.WeakKeyDictionary()


def _slots(cls: type) -> list[str]:
    names: list[str] = []
    for klass in reversed(cls.__mro__):
        names += [s for s in getattr(klass, "__slots__", ()) if s not in names]
    return names


_ITEM_SLOTS = [s for s in _slots(Item) if s != "id"]
#: the slots a snapshot compares one by one (the pipeline is referred to by index)
_ITEM_FIELDS = [s for s in _ITEM_SLOTS if s != "pipeline"]
#: an item's slot values at once (all immutable: tuples, enums, strings, numbers)
_item_values = attrgetter(*_ITEM_FIELDS)
_GROUP_SLOTS = [s for s in _slots(Group) if s not in _GROUP_FIXED]


def readable(data: dict[str, Any]) -> bool:
    """True when ``data`` is a snapshot of a layout this version reads."""
    return data.get("version") in READABLE


def migrate(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` in the current layout (ValueError: a layout this version does not read)."""
    version = data.get("version")
    if version == VERSION:
        return data
    if version == 1:
        return from_v1(data, VERSION)
    raise ValueError(f"snapshot version {version!r}; this version reads {READABLE}")


def _baseline(engine: Snapshotted) -> Snapshotted:
    """A fresh engine over the same plan, inventory and policy (cached per engine)."""
    fresh = _fresh.get(engine)
    if fresh is None:
        fresh = _fresh[engine] = engine.fresh()
    return fresh


def _diff_dict(now: dict[Any, Any], was: dict[Any, Any]) -> Any:
    changed = [(k, v) for k, v in now.items() if k not in was or was[k] != v]
    removed = [k for k in was if k not in now]
    gone = set(removed)
    order = [k for k in was if k not in gone] + [k for k, _ in changed if k not in was]
    if list(now) != order:  # the restored dict would iterate differently: keep it whole
        return enc(now)
    return {"$dd": [[enc(k), enc(v)] for k, v in changed], "rm": [enc(k) for k in removed]}


def _part(part: Any, base: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name in type(part).STATE:
        value, was = getattr(part, name), getattr(base, name)
        if type(was) is type(value) and was == value:
            continue
        if isinstance(value, dict) and isinstance(was, dict):
            fields[name] = _diff_dict(value, was)
        else:
            fields[name] = enc(value)
    return fields


def take(engine: Snapshotted, baseline: Snapshotted | None = None) -> dict[str, Any]:
    """The snapshot of ``engine`` (see the module docstring); ``baseline``, if given, a fresh
    engine over the same plan, inventory and policy, never fed an event (else one is made)."""
    fresh = baseline if baseline is not None else _baseline(engine)
    bases = fresh.parts()
    parts = {name: fields for name, part in engine.parts().items()
             if (fields := _part(part, bases[name]))}
    items: dict[str, Any] = {}
    pipelines: dict[Any, int] = {}  # few distinct pipelines: stored once, referred to
    # a later snapshot of the same engine encodes only the items that changed since
    memo = _memo.setdefault(engine, {}) if baseline is None else {}
    fresh_items = fresh.items
    for ident, item in engine.items.items():
        base = fresh_items[ident]
        values = _item_values(item)
        known = memo.get(ident)
        if known is not None and known[0] == values:
            fields = known[1]
        else:
            fields = {}
            for name, value in zip(_ITEM_FIELDS, values, strict=True):
                was = getattr(base, name)
                if value is not was and value != was:
                    fields[name] = enc(value)
            memo[ident] = (values, fields)
        pipeline = item.pipeline
        if pipeline is not base.pipeline and pipeline != base.pipeline:
            fields = {**fields, "pipeline": {"$p": pipelines.setdefault(pipeline,
                                                                        len(pipelines))}}
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
    data: dict[str, Any] = {"version": VERSION, "state": engine.machine.state.value}
    if engine.phase is not fresh.phase:
        data["phase"] = enc(engine.phase)
    data.update(parts=parts, items=items, groups=groups,
                pipelines=[enc(p) for p in pipelines])
    return data


def restore(engine: E, data: dict[str, Any]) -> E:
    """Put a fresh ``engine`` (never fed an event) in the state ``data`` was taken in."""
    data = migrate(data)
    phase = dec(data["phase"]) if "phase" in data else engine.phase
    engine.machine.restore(RunState(data["state"]), phase)
    parts = engine.parts()
    for part_name, fields in data["parts"].items():
        part = parts[part_name]
        for name, value in fields.items():
            if name not in type(part).STATE:
                raise ValueError(f"snapshot sets {part_name}.{name}, not a field it keeps")
            if isinstance(value, dict) and "$dd" in value:
                target = getattr(part, name)
                for key in value["rm"]:
                    del target[as_key(dec(key))]
                for key, entry in value["$dd"]:
                    target[as_key(dec(key))] = dec(entry)
            else:
                setattr(part, name, retyped(getattr(part, name), dec(value)))
    pipelines = [dec(p) for p in data.get("pipelines", ())]
    for ident, fields in data["items"].items():
        item = engine.items[ident]
        for name, value in fields.items():
            if isinstance(value, dict) and "$p" in value:
                setattr(item, name, pipelines[value["$p"]])
            else:
                setattr(item, name, retyped(getattr(item, name), dec(value)))
    by_value = {phase.value: groups for phase, groups in engine.groups.items()}
    for key, fields in data["groups"].items():
        phase_name, _, index = key.partition("|")
        group = by_value[phase_name][int(index)]
        for name, value in fields.items():
            setattr(group, name, dec(value))
    engine.recount()
    return engine
