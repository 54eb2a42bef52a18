"""``report --format html``: one self-contained page with an inline SVG Gantt.

Pure: the report document in, HTML out.  Inline CSS, inline SVG, no script, no
font, image or style sheet from anywhere: the page reads the same offline, in
a mail attachment, or printed.  Every text from the inventory or the journal is
escaped with :func:`html.escape`.

The Gantt has one row per phase without units (pre-check, bundle, coordinator,
post-check) and one per unit, in plan order (one per group of units instead when
the run has more than :data:`UNIT_ROWS_MAX` units, so a 3,000-host report stays
a page); each row shows the planned bar (grey, above) and the actual bar
(coloured by outcome, below), with pauses as shaded bands across the chart, a red
tick where an attempt failed and a red line where a failure stopped the run.

The units table is rolled up per group: each group is a ``<details>`` element
(expands on click, no script) whose summary counts its outcomes; a group with a
failure, or a small run's groups, start open.  A failed run's stop is not a pause:
it is named at the top with the next command (:mod:`upgrade.render.report_story`).
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from typing import Any

from upgrade.render import hms
from upgrade.render.report_markdown import when
from upgrade.render.report_story import (
    GroupSummary,
    counts_text,
    duration_text,
    groups,
    next_text,
    pauses,
    phase_outcome,
    stop_text,
    stops,
)

#: above this many units the Gantt draws one row per group, not per unit
UNIT_ROWS_MAX = 60
#: groups of at most this many units start open in the units table
OPEN_GROUP_MAX = 20
#: a section with more rows than this (vMotions of a large run) starts folded
SECTION_ROWS_MAX = 50

_COLOURS = {"upgraded": "#2e7d32", "done": "#2e7d32", "already_at_target": "#66bb6a",
            "failed": "#c62828", "stopped": "#c62828", "skipped": "#ef6c00",
            "in_progress": "#1565c0", "running": "#1565c0"}
_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
margin:24px;color:#1b1b1b;background:#fff;max-width:1180px}
h1{font-size:22px;margin:0 0 8px}h2{font-size:17px;margin:28px 0 8px;
border-bottom:1px solid #ddd;padding-bottom:4px}
table{border-collapse:collapse;font-size:13px;margin:4px 0}
th,td{border:1px solid #d0d0d0;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}
.state{display:inline-block;padding:2px 10px;border-radius:10px;color:#fff;font-weight:600}
.summary td:first-child{font-weight:600;background:#fafafa}
.legend span{display:inline-block;margin-right:14px;font-size:12px}
.legend i{display:inline-block;width:14px;height:10px;margin-right:4px;vertical-align:middle}
.muted{color:#666}
svg text{font-family:inherit}
.next{border-left:4px solid #1565c0;background:#e3f2fd;padding:6px 10px;margin:8px 0}
.stopped{border-left:4px solid #c62828;background:#ffebee;padding:6px 10px;margin:8px 0}
details{margin:2px 0}summary{cursor:pointer;font-size:13px;padding:2px 0}
summary .bad{color:#c62828;font-weight:600}
"""
_STATE_COLOURS = {"done": "#2e7d32", "failed": "#c62828", "aborted": "#6d4c41",
                  "paused": "#ef6c00", "running": "#1565c0"}


def e(value: object) -> str:
    """``value`` as escaped HTML text (None: a dash)."""
    return "-" if value is None else html.escape(str(value), quote=True)


def report_to_html(doc: dict[str, Any]) -> str:
    """The whole report as one HTML document."""
    title = f"Upgrade report: {doc['name']}"
    state = str(doc["state"])
    stopped, next_step = stop_text(doc), next_text(doc)
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{e(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{e(title)} <span class=\"state\" style=\"background:"
        f"{_STATE_COLOURS.get(state, '#555')}\">{e(state)}</span></h1>",
        f'<p class="stopped"><strong>Stopped:</strong> {e(stopped)}</p>' if stopped else "",
        f'<p class="next"><strong>Next:</strong> {e(next_step)}</p>' if next_step else "",
        _summary(doc),
        "<h2>Planned against actual</h2>", _legend(), gantt_svg(doc),
        "<h2>Phases</h2>",
        _table(("phase", "planned start", "planned", "actual start", "took", "outcome",
                "units done"),
               ((p["name"], when(p["planned_start_s"]), when(p["planned_duration_s"]),
                 when(p["actual_start_s"]), when(p["actual_duration_s"]),
                 phase_outcome(doc, p),
                 f"{p['units_done']}/{p['units']}" if p["units"] else "")
                for p in doc["phases"])),
        "<h2>Units</h2>", _units(doc),
        _section("Pauses", ("asked", "paused", "resumed", "by", "why", "outcome"),
                 [(when(p["requested_at_s"]), when(p["paused_at_s"]), when(p["resumed_at_s"]),
                   p["by"], p["why"], p["outcome"]) for p in pauses(doc)], "No pauses."),
        _section("Failures", ("at", "phase", "unit", "error"),
                 [(when(f["at_s"]), f["phase"], f["unit"] or "", f["error"])
                  for f in doc["failures"]], "No failures."),
        _section("Retries", ("at", "phase", "unit", "detail"),
                 [(when(r["at_s"]), r["phase"], r["unit"] or "", r["detail"])
                  for r in doc["retries"]], "No retries."),
        _section("Skips", ("at", "unit", "by"),
                 [(when(s["at_s"]), s["unit"], s["by"]) for s in doc["skips"]],
                 "No unit was skipped."),
        _section("vMotions", ("VM", "from", "to", "start", "end", "outcome", "moved by"),
                 _moves(doc), "No VM was moved."),
        _section("Pre-check findings", ("id", "severity", "unit", "acknowledged", "message"),
                 [(f["id"], f["severity"], f.get("unit") or "",
                   "yes" if f["acknowledged"] else "no", f["message"])
                  for f in doc["findings"]], "No findings."),
        "<p class=\"muted\">Times are h:mm:ss on the run's clock from its start "
        "(simulated time on the virtual clock).</p>",
        "</body></html>",
    ]
    return "\n".join(p for p in parts if p) + "\n"


def _units(doc: dict[str, Any]) -> str:
    """The units table, one ``<details>`` per group (open when small or failed)."""
    found = groups(doc)
    small = len(doc["units"]) <= OPEN_GROUP_MAX
    out = []
    for group in found:
        counts = group.counts
        failed = counts.get("failed", 0)
        planned = group.span("planned_start_s", "planned_duration_s", float(doc["clock_s"]))
        actual = group.span("actual_start_s", "actual_duration_s", float(doc["clock_s"]))
        when_text = (f"planned {when(planned[0])}\u2013{when(planned[1])}" if planned else "")
        if actual:
            when_text += f", actual {when(actual[0])}\u2013{when(actual[1])}"
        outcome_html = e(counts_text(counts))
        if failed:
            outcome_html = f'<span class="bad">{outcome_html}</span>'
        summary = (f"<summary><strong>{e(group.phase)} \u00b7 {e(group.name)}</strong>: "
                   f"{len(group.units)} unit{'s' if len(group.units) != 1 else ''}, "
                   f"{outcome_html}; {e(when_text)}</summary>")
        rows = _table(("unit", "planned start", "planned", "actual start", "took", "outcome",
                       "retries"),
                      ((u["id"], when(u["planned_start_s"]), when(u["planned_duration_s"]),
                        when(u["actual_start_s"]), when(u["actual_duration_s"]), u["outcome"],
                        u["retries"]) for u in group.units))
        opened = " open" if small or failed else ""
        out.append(f"<details{opened}>{summary}{rows}</details>")
    return "".join(out) if out else '<p class="muted">No units.</p>'


def _moves(doc: dict[str, Any]) -> list[Sequence[object]]:
    rows: list[Sequence[object]] = [
        (m["vm"], m["from"], m["to"], when(m["start_s"]), when(m["end_s"]), m["outcome"],
         m["by"]) for m in doc["vmotions"]]
    rows += [(", ".join(d["vms"]), d["host"], "chosen by DRS", when(d["start_s"]),
              when(d["end_s"]), "done" if d["end_s"] is not None else "running", d["by"])
             for d in doc["drs_evacuations"]]
    return rows


def _summary(doc: dict[str, Any]) -> str:
    rows: list[tuple[str, object]] = [
        ("versions", f"NSX-T {doc['source_version']} to {doc['target_version']}"),
        ("started", f"{doc.get('started_at') or '-'} ({doc.get('clock') or 'unknown'} clock)"),
        ("duration", duration_text(doc)),
        ("units", f"{doc['units_done']}/{doc['units_total']} at the target version"),
        ("state directory", doc.get("state_dir")),
    ]
    if doc.get("aborted"):
        rows.append(("aborted", f"{doc['aborted'].get('reason')} "
                                f"(at {doc['aborted'].get('at')})"))
    if doc.get("window"):
        window = doc["window"]
        rows.append(("maintenance window", f"{window['window']}; when it closes: "
                     f"{window['on_close']}; pauses by the window: "
                     f"{window['paused_by_window']}"))
    if doc["acknowledged"]:
        rows.append(("acknowledged findings", ", ".join(doc["acknowledged"])))
    body = "".join(f"<tr><td>{e(k)}</td><td>{e(v)}</td></tr>" for k, v in rows)
    return f'<table class="summary">{body}</table>'


def _table(head: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    top = "".join(f"<th>{e(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{e(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{top}</tr></thead><tbody>{body}</tbody></table>"


def _section(title: str, head: Sequence[str], rows: list[Sequence[object]], empty: str) -> str:
    """A titled table; a long one (more than :data:`SECTION_ROWS_MAX` rows) folded into a
    ``<details>`` that opens on click."""
    if not rows:
        return f'<h2>{e(title)}</h2><p class="muted">{e(empty)}</p>'
    if len(rows) > SECTION_ROWS_MAX:
        return (f"<h2>{e(title)}</h2><details><summary>{len(rows):,} rows (click to show)"
                f"</summary>{_table(head, rows)}</details>")
    return f"<h2>{e(title)}</h2>{_table(head, rows)}"


def _legend() -> str:
    items = [("#b0b0b0", "planned"), ("#2e7d32", "upgraded / done"),
             ("#66bb6a", "already at target"), ("#1565c0", "in progress"),
             ("#ef6c00", "skipped"), ("#c62828", "failed"), ("#ffe0b2", "paused")]
    return '<div class="legend">' + "".join(
        f'<span><i style="background:{c}"></i>{e(t)}</span>' for c, t in items) + "</div>"


# -- the Gantt ------------------------------------------------------------------------------

_LABEL_W, _WIDTH, _ROW_H, _TOP = 170, 1120, 26, 28


def _rows(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per phase without units and per unit (per group of units in a large run)."""
    per_group = len(doc["units"]) > UNIT_ROWS_MAX
    units_of: dict[str, list[dict[str, Any]]] = {}
    if per_group:
        for group in groups(doc):
            units_of.setdefault(group.phase, []).append(_group_row(group, doc))
    else:
        for unit in doc["units"]:
            units_of.setdefault(unit["phase"], []).append(unit)
    rows: list[dict[str, Any]] = []
    for phase in doc["phases"]:
        rows += units_of.get(phase["name"]) or [{
            "id": phase["name"], "planned_start_s": phase["planned_start_s"],
            "planned_duration_s": phase["planned_duration_s"],
            "actual_start_s": phase["actual_start_s"],
            "actual_duration_s": phase["actual_duration_s"], "outcome": phase["outcome"],
            "phase": phase["name"]}]
    return rows


def _group_row(group: GroupSummary, doc: dict[str, Any]) -> dict[str, Any]:
    """A Gantt row for a whole group: from its first start to its last end."""
    clock = float(doc["clock_s"])
    planned = group.span("planned_start_s", "planned_duration_s", clock)
    actual = group.span("actual_start_s", "actual_duration_s", clock)
    open_units = any(u["actual_start_s"] is not None and u["actual_duration_s"] is None
                     for u in group.units)
    return {
        "id": f"{group.name} ({len(group.units)})",
        "planned_start_s": planned[0] if planned else None,
        "planned_duration_s": planned[1] - planned[0] if planned else None,
        "actual_start_s": actual[0] if actual else None,
        "actual_duration_s": None if actual is None or open_units else actual[1] - actual[0],
        "outcome": group.outcome, "phase": group.phase,
        "failures": [dict(f, error=f"{u['id']}: {f['error']}")
                     for u in group.units for f in u.get("failures", [])],
    }


def gantt_svg(doc: dict[str, Any]) -> str:
    """An inline SVG: planned (grey) and actual (by outcome) bars per phase or unit."""
    rows = _rows(doc)
    end: float = max([float(doc["planned_duration_s"] or 0), float(doc["clock_s"] or 0), 60.0]
                     + [float((r["planned_start_s"] or 0) + (r["planned_duration_s"] or 0))
                        for r in rows])
    span = _WIDTH - _LABEL_W - 20
    height = _TOP + len(rows) * _ROW_H + 10

    def x(t: float) -> float:
        return round(_LABEL_W + t / end * span, 1)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{height}" '
           f'viewBox="0 0 {_WIDTH} {height}" role="img" aria-label="Gantt chart: planned '
           f'against actual">', f'<rect width="{_WIDTH}" height="{height}" fill="#ffffff"/>']
    for pause in pauses(doc):  # bands first, under the bars
        start = pause["paused_at_s"] if pause["paused_at_s"] is not None else \
            pause["requested_at_s"]
        stop = pause["resumed_at_s"] if pause["resumed_at_s"] is not None else doc["clock_s"]
        if start is not None and stop is not None and stop >= start:
            out.append(f'<rect x="{x(start)}" y="{_TOP - 6}" width="{max(2.0, x(stop) - x(start))}"'
                       f' height="{height - _TOP}" fill="#ffe0b2"><title>paused: '
                       f'{e(pause["why"])}</title></rect>')
    for stop in stops(doc):  # a failure that stopped the run: a red line, not a band
        at = stop["paused_at_s"] if stop["paused_at_s"] is not None else stop["requested_at_s"]
        if at is not None:
            out.append(f'<line x1="{x(at)}" y1="{_TOP - 6}" x2="{x(at)}" y2="{height - 4}" '
                       f'stroke="#c62828" stroke-width="2" stroke-dasharray="6 3"><title>'
                       f'run stopped: {e(stop["why"])}</title></line>')
    step = _tick(end)
    t = 0.0
    while t <= end:
        out.append(f'<line x1="{x(t)}" y1="{_TOP - 8}" x2="{x(t)}" y2="{height - 6}" '
                   'stroke="#e4e4e4"/>')
        out.append(f'<text x="{x(t)}" y="{_TOP - 12}" font-size="11" text-anchor="middle" '
                   f'fill="#555">{hms(t)[:-3]}</text>')
        t += step
    for i, row in enumerate(rows):
        y = _TOP + i * _ROW_H
        if i % 2:
            out.append(f'<rect x="0" y="{y}" width="{_LABEL_W - 6}" height="{_ROW_H}" '
                       'fill="#f7f7f7"/>')
        out.append(f'<text x="6" y="{y + 17}" font-size="12" fill="#1b1b1b">{e(row["id"])}'
                   "</text>")
        if row["planned_start_s"] is not None:
            width = max(2.0, x(row["planned_start_s"] + (row["planned_duration_s"] or 0))
                        - x(row["planned_start_s"]))
            out.append(f'<rect x="{x(row["planned_start_s"])}" y="{y + 4}" width="{width}" '
                       f'height="8" fill="#b0b0b0"><title>{e(row["id"])} planned: '
                       f'{when(row["planned_start_s"])} for {when(row["planned_duration_s"])}'
                       "</title></rect>")
        if row["actual_start_s"] is not None:
            took = row["actual_duration_s"]
            if took is None:
                took = max(0.0, float(doc["clock_s"]) - row["actual_start_s"])
            width = max(2.0, x(row["actual_start_s"] + took) - x(row["actual_start_s"]))
            colour = _COLOURS.get(str(row["outcome"]), "#1565c0")
            out.append(f'<rect x="{x(row["actual_start_s"])}" y="{y + 13}" width="{width}" '
                       f'height="10" fill="{colour}"><title>{e(row["id"])} actual: '
                       f'{when(row["actual_start_s"])} for {when(took)}, {e(row["outcome"])}'
                       "</title></rect>")
        for failure in row.get("failures", []):  # a red tick where an attempt failed
            out.append(f'<rect x="{x(failure["at_s"]) - 2}" y="{y + 10}" width="4" '
                       f'height="16" fill="#c62828"><title>{e(row["id"])} failed at '
                       f'{when(failure["at_s"])}: {e(failure["error"])}</title></rect>')
    out.append("</svg>")
    return "\n".join(out)


def _tick(end: float) -> float:
    for step in (300, 600, 900, 1800, 3600, 7200, 14400, 28800, 86400):
        if end / step <= 14:
            return float(step)
    return float(end) / 10
