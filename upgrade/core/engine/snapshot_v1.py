"""The reader of snapshot version 1: the layout of the engine built as a chain of base
classes (every attribute of the one engine object, by its name), as the current layout
(:mod:`.snapshot`, version 2: each part's fields under the part's name).

A pure translation of data: values are tagged alike in both versions, and each part's
fields differ from a fresh engine's exactly where the old attributes did.
"""

from __future__ import annotations

from typing import Any

#: a version-1 engine attribute -> (part, field) in the current layout
NAMES: dict[str, tuple[str, str]] = {
    "now": ("run", "now"),
    "stop": ("run", "stop"),
    "stop_reasons": ("run", "stop_reasons"),
    "_checkpoint": ("run", "checkpoint"),
    "phase_times": ("run", "phase_times"),
    "unit_times": ("run", "unit_times"),
    "_active": ("run", "active"),
    "quiet": ("run", "quiet"),
    "_repeat": ("run", "repeat"),
    "_maintenance": ("capacity", "maintenance"),
    "_entering": ("capacity", "entering"),
    "_restoring": ("capacity", "restoring"),
    "_running_vms": ("capacity", "running_vms"),
}
#: version-1 helper objects whose ``STATE`` fields were kept as ``{"$o": {field: value}}``
OBJECTS = frozenset({"canary", "window", "budget"})


def from_v1(data: dict[str, Any], version: int) -> dict[str, Any]:
    """The version-1 snapshot ``data`` in the layout of ``version`` (ValueError: not one)."""
    parts: dict[str, dict[str, Any]] = {}
    current: dict[str, Any] = {"version": version, "state": data["state"]}
    for name, value in data["engine"].items():
        if name == "phase":
            current["phase"] = value
        elif name in OBJECTS and isinstance(value, dict) and "$o" in value:
            parts.setdefault(name, {}).update(value["$o"])
        elif name in NAMES:
            part, field = NAMES[name]
            parts.setdefault(part, {})[field] = value
        else:
            raise ValueError(f"a version-1 snapshot holds no engine attribute {name!r}")
    current.update(parts=parts, items=data["items"], groups=data["groups"],
                   pipelines=data.get("pipelines", []))
    return current
