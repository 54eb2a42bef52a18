"""Values as tagged, JSON-ready data, and back with their types (pure).

Tuples are ``{"$t": [...]}``, sets ``{"$s": [...]}`` (sorted), dicts ``{"$d": [[key, value],
...]}`` (keys of any type, order kept), enums ``{"$e": "module:Class", "v": value}`` (but a
:class:`~.state.Stop` and a :class:`~.items.Waiting` are their plain strings, retyped from
the field they restore: :func:`retyped`), frozen dataclasses ``{"$c": "module:Class", "f":
[...]}`` and floats JSON cannot hold ``{"$f": "inf"}``.  Only classes of the ``upgrade``
package are ever rebuilt.  Engine snapshots (:mod:`.snapshot`) and a run's recorded inputs
are written with it.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import json
import math
from enum import Enum
from typing import Any

from upgrade.core.engine.items import Waiting
from upgrade.core.engine.state import Stop

#: enums a snapshot holds as their plain string (as it did before they were enums)
PLAIN = (Stop, Waiting)


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
    if isinstance(value, PLAIN):
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
        return {as_key(dec(k)): dec(v) for k, v in data["$d"]}
    if "$e" in data:
        return _class(data["$e"])(data["v"])
    if "$c" in data:
        return _class(data["$c"])(*(dec(v) for v in data["f"]))
    if "$f" in data:
        return float(data["$f"])
    raise ValueError(f"not snapshot data: {data!r}")


def retyped(was: Any, value: Any) -> Any:
    """``value`` as the plain enum ``was`` is, if it is one (see :data:`PLAIN`)."""
    return type(was)(value) if isinstance(was, PLAIN) else value


def as_key(value: Any) -> Any:
    """A decoded dict key: a list (a tuple stored inside a key) as a tuple."""
    return tuple(value) if isinstance(value, list) else value
