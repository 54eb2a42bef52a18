"""``report --format markdown``: tables and a mermaid Gantt that render on GitHub.

Pure: the report document (:func:`upgrade.shell.run_records.report_doc`) in, markdown out.
Names from the inventory are escaped for table cells (``|``, HTML and markdown
punctuation) and for the mermaid chart (:func:`upgrade.render.plan_mermaid.escape`);
task ids are generated.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from upgrade.render import hms
from upgrade.render.plan_mermaid import escape as _plan_escape
from upgrade.render.report_story import (
    duration_text,
    next_text,
    pauses,
    phase_outcome,
    stop_text,
)

_CELL = str.maketrans({"|": "\\|", "<": "&lt;", ">": "&gt;", "&": "&amp;", "`": "\\`",
                       "*": "\\*", "_": "\\_", "[": "\\[", "]": "\\]", "\n": " ", "\r": " "})
#: mermaid renders labels as HTML: angle brackets as entity codes too
_ANGLES = str.maketrans({"<": "#60;", ">": "#62;"})


def mermaid_escape(text: str) -> str:
    """``text`` safe as a gantt title, section or task name."""
    return _plan_escape(text).translate(_ANGLES)


#: mermaid task tags for actual bars, by outcome
_TAGS = {"upgraded": "done", "done": "done", "already_at_target": "done", "failed": "crit",
         "running": "active", "in_progress": "active", "stopped": "crit", "skipped": "crit"}


def cell(value: object) -> str:
    """``value`` as text safe inside a markdown table cell."""
    return "" if value is None else str(value).translate(_CELL)


def when(seconds: float | None) -> str:
    """A clock offset as ``h:mm:ss``, or a dash."""
    return "-" if seconds is None else hms(seconds)


def _table(head: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return [*lines, ""]


def report_to_markdown(doc: dict[str, Any]) -> str:
    """The whole report as GitHub-flavoured markdown (ends with a newline)."""
    out = [f"# Upgrade report: {cell(doc['name'])}", ""]
    stopped, next_step = stop_text(doc), next_text(doc)
    if stopped:
        out += [f"**Stopped:** {cell(stopped)}", ""]
    if next_step:
        out += [f"**Next:** {next_step}", ""]
    out += _summary(doc, duration_text(doc))
    out += ["## Planned against actual", "", "```mermaid", *gantt(doc), "```", ""]
    out += ["## Phases", ""]
    out += _table(("phase", "planned start", "planned", "actual start", "took", "outcome",
                   "units done"),
                  ((p["name"], when(p["planned_start_s"]), when(p["planned_duration_s"]),
                    when(p["actual_start_s"]), when(p["actual_duration_s"]),
                    phase_outcome(doc, p), f"{p['units_done']}/{p['units']}" if p["units"] else "")
                   for p in doc["phases"]))
    out += ["## Units", ""]
    out += _table(("unit", "phase", "group", "planned start", "planned", "actual start",
                   "took", "outcome", "retries"),
                  ((u["id"], u["phase"], u["group"], when(u["planned_start_s"]),
                    when(u["planned_duration_s"]), when(u["actual_start_s"]),
                    when(u["actual_duration_s"]), u["outcome"], u["retries"])
                   for u in doc["units"]))
    out += _section("Pauses", ("asked", "paused", "resumed", "by", "why", "outcome"),
                    [(when(p["requested_at_s"]), when(p["paused_at_s"]),
                      when(p["resumed_at_s"]), p["by"], p["why"], p["outcome"])
                     for p in pauses(doc)], "No pauses.")
    out += _section("Failures", ("at", "phase", "unit", "error"),
                    [(when(f["at_s"]), f["phase"], f["unit"] or "", f["error"])
                     for f in doc["failures"]], "No failures.")
    out += _section("Retries", ("at", "phase", "unit", "detail"),
                    [(when(r["at_s"]), r["phase"], r["unit"] or "", r["detail"])
                     for r in doc["retries"]], "No retries.")
    out += _section("Skips", ("at", "unit", "by"),
                    [(when(s["at_s"]), s["unit"], s["by"]) for s in doc["skips"]],
                    "No unit was skipped.")
    moves = [(m["vm"], m["from"], m["to"], when(m["start_s"]), when(m["end_s"]), m["outcome"],
              m["by"]) for m in doc["vmotions"]]
    moves += [(", ".join(d["vms"]), d["host"], "chosen by DRS", when(d["start_s"]),
               when(d["end_s"]), "done" if d["end_s"] is not None else "running", d["by"])
              for d in doc["drs_evacuations"]]
    out += _section("vMotions", ("VM", "from", "to", "start", "end", "outcome", "moved by"),
                    moves, "No VM was moved.")
    out += _section("Pre-check findings", ("id", "severity", "unit", "acknowledged", "message"),
                    [(f["id"], f["severity"], f.get("unit") or "",
                      "yes" if f["acknowledged"] else "no", f["message"])
                     for f in doc["findings"]], "No findings.")
    return "\n".join(out).rstrip("\n") + "\n"


def _summary(doc: dict[str, Any], duration: str) -> list[str]:
    lines = [f"- **State:** {cell(doc['state'])}",
             f"- **Versions:** NSX-T {cell(doc['source_version'])} to "
             f"{cell(doc['target_version'])}",
             f"- **Started:** {cell(doc.get('started_at') or '-')} "
             f"({cell(doc.get('clock') or 'unknown')} clock)",
             f"- **Duration:** {cell(duration)}",
             f"- **Units:** {doc['units_done']}/{doc['units_total']} at the target version",
             f"- **State directory:** `{str(doc.get('state_dir', '')).replace('`', '')}`"]
    if doc.get("aborted"):
        lines.append(f"- **Aborted:** {cell(doc['aborted'].get('reason'))} "
                     f"(at {cell(doc['aborted'].get('at'))})")
    if doc.get("window"):
        window = doc["window"]
        lines.append(f"- **Maintenance window:** {cell(window['window'])}; when it closes: "
                     f"{cell(window['on_close'])}; pauses by the window: "
                     f"{window['paused_by_window']}")
    if doc["acknowledged"]:
        lines.append(f"- **Acknowledged findings:** {cell(', '.join(doc['acknowledged']))}")
    return [*lines, ""]


def _section(title: str, head: Sequence[str], rows: Sequence[Sequence[object]],
             empty: str) -> list[str]:
    if not rows:
        return [f"## {title}", "", empty, ""]
    return [f"## {title}", "", *_table(head, rows)]


def gantt(doc: dict[str, Any]) -> list[str]:
    """A mermaid ``gantt`` of the planned (plain) and actual (tagged) bars, per phase."""
    lines = ["gantt", f"    title {mermaid_escape(str(doc['name']))}: planned and actual",
             "    dateFormat X", "    axisFormat %H:%M", "    todayMarker off",
             "    %% times are seconds from the start of the run"]
    ids = (f"t{n}" for n in range(1, 1_000_000))
    units_of: dict[str, list[dict[str, Any]]] = {}
    for unit in doc["units"]:
        units_of.setdefault(unit["phase"], []).append(unit)
    for phase in doc["phases"]:
        lines.append(f"    section {mermaid_escape(phase['name'])}")
        rows = units_of.get(phase["name"]) or [{
            "id": phase["name"], "planned_start_s": phase["planned_start_s"],
            "planned_duration_s": phase["planned_duration_s"],
            "actual_start_s": phase["actual_start_s"],
            "actual_duration_s": phase["actual_duration_s"], "outcome": phase["outcome"]}]
        for row in rows:
            name = mermaid_escape(str(row["id"]))
            if row["planned_start_s"] is not None:
                lines.append(_task(f"{name} planned", "", next(ids), row["planned_start_s"],
                                   row["planned_duration_s"] or 0))
            if row["actual_start_s"] is not None:
                took = row["actual_duration_s"]
                if took is None:  # still running, or stopped: up to the run's last record
                    took = max(0.0, doc["clock_s"] - row["actual_start_s"])
                lines.append(_task(f"{name} actual", _TAGS.get(row["outcome"], "active"),
                                   next(ids), row["actual_start_s"], took))
    return lines


def _task(name: str, tag: str, ident: str, start: float, duration: float) -> str:
    begin, end = round(start), round(start + duration)
    tags = [t for t in (tag, "milestone" if end <= begin else "") if t]
    prefix = ", ".join(tags) + ", " if tags else ""
    return f"    {name} :{prefix}{ident}, {begin}, {max(begin, end)}"
