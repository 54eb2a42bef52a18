"""``plan --format mermaid``: the estimated schedule as a Mermaid ``gantt`` chart.

Paste it into GitHub markdown inside a ```` ```mermaid ```` fence.  Times are
seconds from the upgrade's start (``dateFormat X``), drawn on an ``%H:%M``
axis (Mermaid draws it in the viewer's time zone: outside UTC the axis is
shifted by the viewer's offset; the bars are right).  The chart has one section per
phase, in the order of the plan's flow (named in a ``%%`` comment), and one bar per
unit from its first operation to its last (for a host in maintenance mode: enter
maintenance, evacuate, upgrade, exit maintenance), group by group in the plan's order.  A phase
with no scheduled operations is one bar over its estimated start and
duration, or a milestone when it takes no time, so the chart stays valid
before anything is estimated.

Task ids are generated (``t1``, ``t2``, ...), never taken from the inventory.
Names from the files are escaped with Mermaid's entity codes: ``:``, ``;`` and
``#`` end a task's name in the gantt grammar, and a name that begins like a
gantt keyword (``section``, ``title``, ``gantt``, a date, ...) would be read as
one, so its first character is written as an entity too.
"""

from __future__ import annotations

import re

from upgrade.core.plan import UNIT_PHASES, Bar, PhasePlan, Plan
from upgrade.render import hms, printable

#: words the gantt lexer matches at the start of a line before a task's name
_KEYWORDS = re.compile(
    r"(?i)^(?:gantt|inclusiveEndDates|topAxis|accTitle|accDescr"
    r"|(?:dateFormat|axisFormat|tickInterval|includes|excludes|todayMarker|weekday|title"
    r"|accDescription|section|click|call|href)\s|\d{4}-\d\d-\d\d|%%)"
)

_ENTITIES = str.maketrans({"#": "#35;", ":": "#58;", ";": "#59;", "\n": " "})
#: a title may hold colons
_TITLE_ENTITIES = str.maketrans({"#": "#35;", ";": "#59;", "\n": " "})


def plan_to_mermaid(plan: Plan) -> str:
    """The Mermaid source of the plan's estimated schedule (ends with a newline)."""
    lines = [
        "gantt",
        f"    title {_title(plan).translate(_TITLE_ENTITIES)}",
        "    dateFormat X",
        "    axisFormat %H:%M",
        "    todayMarker off",
        "    %% times are seconds from the start of the upgrade",
    ]
    if plan.flow is not None:  # a comment: the chart's sections follow the flow's order
        lines.append(f"    %% flow {plan.flow.id}: "
                     f"{', '.join(p.value for p in plan.flow.order)}".replace("\n", " "))
    ids = (f"t{n}" for n in range(1, 1_000_000))
    for phase in plan.phases:
        lines.append(f"    section {escape(phase.name.value)}")
        bars = [b for b in plan.schedule if b.phase is phase.name]
        for name, start, end in _tasks(phase, bars):
            tag = "milestone, " if end <= start else ""
            lines.append(f"    {escape(name)} :{tag}{next(ids)}, {start}, {max(start, end)}")
    return "\n".join(lines) + "\n"


def escape(text: str) -> str:
    """``text`` safe as a gantt title, section or task name."""
    text = " ".join(printable(text).split())  # no control characters, newlines, runs of blanks
    text = text.translate(_ENTITIES)
    if _KEYWORDS.match(text):
        text = f"#{ord(text[0])};{text[1:]}"
    return text or "#8203;"


def _title(plan: Plan) -> str:
    return (
        f"{plan.name}: NSX-T {plan.source_version} to {plan.target_version}, "
        f"estimated {hms(plan.estimated_duration_s)}"
    )


def _tasks(phase: PhasePlan, bars: list[Bar]) -> list[tuple[str, int, int]]:
    """(name, start, end) per unit of the phase, in the plan's unit order."""
    if not bars:
        start = phase.estimated_start_s
        return [(phase.name.value, start, start + phase.estimated_duration_s)]
    spans: dict[str, tuple[int, int, list[str]]] = {}
    for bar in sorted(bars, key=lambda b: (b.start, b.end)):
        first, last, ops = spans.get(bar.unit, (bar.start, bar.end, []))
        if bar.op not in ops:
            ops.append(bar.op)
        spans[bar.unit] = (min(first, bar.start), max(last, bar.end), ops)
    if phase.name not in UNIT_PHASES:
        return [(", ".join(ops), first, last) for first, last, ops in spans.values()]
    order = {unit: i for i, unit in enumerate(u for g in phase.groups for u in g.units)}
    units = sorted(spans, key=lambda u: (order.get(u, len(order)), spans[u][0]))
    return [(unit, spans[unit][0], spans[unit][1]) for unit in units]
