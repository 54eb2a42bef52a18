"""``plan --format json``: the DESIGN section 3 contract, plus a few added keys.

Contract keys (never renamed or removed): ``name``, ``source_version``,
``target_version``, ``phases`` (each ``name``, ``groups`` of ``name``,
``units``, ``max_parallel``; ``max_parallel_groups``, ``estimated_duration_s``),
``estimated_duration_s``, ``findings`` and ``compatibility``.

Added: ``runnable`` and ``refusals`` (why exit 4), ``notes`` (e.g. capped
concurrency), ``upgrade_mode``, ``pause_after_each_group``, ``nothing_to_do``
(every unit already at the target: the run changes nothing) and
``already_at_target`` (those units, in plan order; they are not in any group's
``units``), per phase ``estimated_start_s`` and ``skipped`` (a step not run
because there is nothing to do), per group ``note`` and ``already_at_target``
(its members left as they are), per finding ``id``, ``severity``,
``message``, ``unit``, ``acknowledged`` and ``blocking``, and ``schedule``:
the estimated operations as ``{phase, unit, op, start, end}`` in seconds from
the start; ``flow``: the Upgrade Coordinator order the plan follows (DESIGN section 9:
``id`` and ``source``, plus ``title``, ``order`` and per unit phase its ``unit`` kind,
``parallel``, ``api`` calls and ``source``; ``merged``: unit kinds the target release
has no phase for), or null when the flow data holds none for the hop (then ``phases``
is empty and ``refusals`` says why).  Phases appear in the flow's order: from NSX-T 2.5
the edges come before the hosts, as VMware's upgrade guides order them.
"""

from __future__ import annotations

from collections.abc import Callable
from json.encoder import encode_basestring_ascii
from typing import Any

from upgrade.core.model import Finding
from upgrade.core.plan import Bar, Flow, GroupPlan, Phase, PhasePlan, Plan
from upgrade.render.jsontext import Streamed, indented_text, write_indented
from upgrade.render.plan_window import finish_json


def write_plan_json(plan: Plan, write: Callable[[str], object]) -> None:
    """Write ``plan --format json``'s document through ``write``, in pieces: the text of
    ``dumps_indented(plan_to_json(plan), default=str)``, without the whole document (or its
    schedule of one dict per operation) ever in memory (issue 23 item 4)."""
    write_indented(plan_to_json(plan, streamed=True), write, default=str)


def plan_to_json(plan: Plan, streamed: bool = False) -> dict[str, Any]:
    """The plan as a JSON-ready dict, phases in the order of the plan's flow.

    ``streamed``: the schedule is a :class:`~upgrade.render.jsontext.Streamed` list, for
    :func:`~upgrade.render.jsontext.write_indented` only.
    """
    return {
        "name": plan.name,
        "source_version": str(plan.source_version),
        "target_version": str(plan.target_version),
        "phases": [_phase(p) for p in plan.phases],
        "estimated_duration_s": plan.estimated_duration_s,
        "findings": [finding_to_json(f) for f in plan.findings],
        "compatibility": dict(plan.compatibility),
        "runnable": plan.runnable,
        "refusals": list(plan.refusals),
        "notes": list(plan.notes),
        "upgrade_mode": plan.upgrade_mode.value,
        "pause_after_each_group": plan.pause_after_each_group,
        "schedule": (Streamed(plan.schedule, _bars_text) if streamed
                     else [_bar(b) for b in plan.schedule]),
        "nothing_to_do": plan.nothing_to_do,
        "already_at_target": list(plan.already_at_target),
        **finish_json(plan),
        "canary": ({"hosts": list(plan.canary_hosts),
                    "then": "pause" if plan.canary_watch_s is None else "watch",
                    "watch_s": plan.canary_watch_s} if plan.canary_hosts else None),
        "max_fail_percentage": {"hosts": plan.max_fail_hosts_percent},
        "restore_vm_placement": plan.restore_vm_placement,
        "flow": flow_to_json(plan.flow) if plan.flow is not None else None,
    }


def flow_to_json(flow: Flow) -> dict[str, Any]:
    """The flow a plan follows, with the citation of each fact."""
    return {
        "id": flow.id,
        "source": flow.source,
        "title": flow.title,
        "from": flow.from_spec,
        "to": flow.to_spec,
        "order": [p.value for p in flow.order],
        "phases": [{"name": p.phase.value, "unit": p.unit.value, "parallel": p.parallel,
                    "api": list(p.api), "source": p.source} for p in flow.phases],
        "merged": [k.value for k in flow.merged],
        "merged_note": flow.merged_note or None,
    }


def finding_to_json(finding: Finding) -> dict[str, Any]:
    """One pre-check finding."""
    return {
        "id": finding.id,
        "severity": finding.severity.value,
        "message": finding.message,
        "unit": finding.unit,
        "acknowledged": finding.acknowledged,
        "blocking": finding.blocking,
    }


def _phase(phase: PhasePlan) -> dict[str, Any]:
    return {
        "name": phase.name.value,
        "groups": [_group(g) for g in phase.groups],
        "max_parallel_groups": phase.max_parallel_groups,
        "estimated_duration_s": phase.estimated_duration_s,
        "estimated_start_s": phase.estimated_start_s,
        "skipped": phase.skipped,
    }


def _group(group: GroupPlan) -> dict[str, Any]:
    return {
        "name": group.name,
        "units": list(group.units),
        "max_parallel": group.max_parallel,
        "note": group.note,
        "already_at_target": list(group.current),
    }


def _bar(bar: Bar) -> dict[str, Any]:
    return {
        "phase": bar.phase.value,
        "unit": bar.unit,
        "op": bar.op,
        "start": bar.start,
        "end": bar.end,
    }


def _bars_text(bars: list[Bar], newline: str) -> list[str]:
    """``[indented_text(_bar(bar), newline) for bar in bars]``, several times faster (a
    plan of 100,000 hosts has 300,000 bars): one ``%`` into a template of the fixed text
    per bar of the usual types, one loop for the batch."""
    if "%" in newline:  # never (a line break and spaces), but the template would break
        return [indented_text(_bar(bar), newline, str) for bar in bars]
    inner = newline + "  "
    template = (f'{{{inner}"phase": %s,{inner}"unit": %s,{inner}"op": %s,{inner}"start": %d,'
                f'{inner}"end": %d{newline}}}')
    encode = encode_basestring_ascii  # a Phase is a StrEnum: its text is its value
    texts = []
    for bar in bars:
        phase, unit, op, start, end = bar.phase, bar.unit, bar.op, bar.start, bar.end
        if (type(phase) is Phase and type(unit) is str and type(op) is str
                and type(start) is int and type(end) is int):
            # %d writes an int as int.__repr__ does
            texts.append(template % (encode(phase), encode(unit), encode(op), start, end))
        else:
            texts.append(indented_text(_bar(bar), newline, str))
    return texts
