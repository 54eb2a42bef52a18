"""Text, Markdown and JSON renderings of the matrix, checks and paths (pure: return strings)."""

from __future__ import annotations

import io

from rich.console import Console
from rich.table import Table
from rich.text import Text

from upgrade.compat.checking import CheckResult
from upgrade.compat.matrix import BUILT_IN, FIELDS, Matrix, Row
from upgrade.compat.path import PathResult
from upgrade.compat.products import Product
from upgrade.compat.sources import Citation

#: marks a row whose Ops Manager list the notes' final text cannot confirm
UNCONFIRMED_MARK = "\u2020"
#: marks a row with a recorded discrepancy between vendor documents
DISCREPANCY_MARK = "\u2021"


def _pks_cell(row: Row) -> str:
    text = row.pks_text
    if row.withdrawn is not None:
        text += " (withdrawn)"
    if not row.confirmable:
        text += UNCONFIRMED_MARK
    if row.discrepancies:
        text += DISCREPANCY_MARK
    return text


def _upgrade_cell(row: Row) -> str:
    return "\u2014" if row.upgrade_from is None else row.upgrade_from.text


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def matrix_markdown(matrix: Matrix) -> str:
    """One row per PKS release (vendor cells verbatim), then withdrawn releases, the
    recorded discrepancies, every row's sources and the supported upgrades."""
    lines = [
        "| PKS | released | NSX-T | Ops Manager | upgrade from | data |",
        "|---|---|---|---|---|---|",
    ]
    for row in matrix.rows:
        cells = (
            _pks_cell(row), row.released or "", row.nsxt.text, row.opsman.text,
            _upgrade_cell(row), row.origin,
        )
        lines.append("| " + " | ".join(_md(c) for c in cells) + " |")
    lines += [
        "",
        f"{UNCONFIRMED_MARK} not confirmable: the notes' final Ops Manager cell only points to "
        "Pivotal Network; the last explicit value is shown (see the note).",
        f"{DISCREPANCY_MARK} another vendor document disagrees (see Discrepancies).",
        "",
        "Withdrawn releases (refused as targets):",
        "",
    ]
    for row in matrix.rows:
        if row.withdrawn is not None:
            where = row.withdrawn_source.render() if row.withdrawn_source else ""
            lines.append(f"- {row.pks_text}: {_md(row.withdrawn)} ({where})")
    lines += ["", "Discrepancies (the release notes decide; --strict refuses):", ""]
    for row in matrix.rows:
        for d in row.discrepancies:
            own = row.spec(d.field)
            lines.append(
                f"- {row.pks_text} {d.field}: release notes {_md(own.text if own else '')!r} "
                f"({row.field_source(d.field).render()}); other reading {_md(d.reading.text)!r} "
                f"({d.source.render()})"
            )
    lines += ["", "Sources:", ""]
    for row in matrix.rows:
        line = f"- {row.pks_text}: {row.source.render()}"
        for name in FIELDS:
            cite = row.field_source(name)
            if cite is not row.source:
                line += f"; {name}: {cite.render()}"
        if row.note:
            line += f" (note: {_md(row.note)})"
        lines.append(line)
    lines += ["", "Supported direct upgrades of NSX-T and Ops Manager:", ""]
    for product in (Product.NSXT, Product.OPSMAN):
        rules = matrix.upgrades[product]
        for hop in rules.hops:
            needs = "".join(f", needs {p.label} {s.text}" for p, s in hop.requires)
            origin = "" if hop.origin == BUILT_IN else f" [{hop.origin}]"
            where = hop.source.render()
            lines.append(f"- {product.label} {hop.describe()}{needs}: {where}{origin}")
        if rules.patches is not None:
            lines.append(f"- {product.label} patch releases of a series: {rules.patches.render()}")
        if rules.one_minor is not None:
            lines.append(
                f"- {product.label}: one minor version at a time (a warning, not a refusal): "
                f"{rules.one_minor[1].render()}"
            )
    lines += ["", "PKS upgrades: each row's upgrade from, from its own notes (see Sources)."]
    return "\n".join(lines) + "\n"


def matrix_text(matrix: Matrix, width: int = 140) -> str:
    """The matrix as a rich table for terminals, one row per PKS release."""
    table = Table(title="PKS / NSX-T / Ops Manager compatibility", show_lines=False)
    for name in ("PKS", "NSX-T", "Ops Manager", "upgrade from", "data"):
        table.add_column(name, overflow="fold")
    for row in matrix.rows:
        cells = (_pks_cell(row), row.nsxt.text, row.opsman.text, _upgrade_cell(row), row.origin)
        table.add_row(*(Text(cell) for cell in cells))
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, force_terminal=False, color_system=None)
    console.print(table)
    console.print(
        f"{UNCONFIRMED_MARK} not confirmable from the notes' final text; "
        f"{DISCREPANCY_MARK} vendor documents disagree "
        "(compat matrix --format markdown lists both sources).",
        markup=False,
    )
    console.print("Supported direct upgrades:", markup=False)
    for product in (Product.NSXT, Product.OPSMAN):
        rules = matrix.upgrades[product]
        hops = ", ".join(h.describe() for h in rules.hops)
        patches = "; later patches within a series" if rules.patches else ""
        console.print(f"  {product.label}: {hops}{patches}", soft_wrap=True, markup=False)
    return buffer.getvalue()


def _row_json(row: Row) -> dict[str, object]:
    return {
        "pks": row.pks_text,
        "released": row.released,
        "nsxt": row.nsxt.text,
        "opsman": row.opsman.text,
        "upgrade_from": None if row.upgrade_from is None else row.upgrade_from.text,
        "upgrade_text": row.upgrade_text,
        "source": row.source.render(),
        "sources": {name: row.field_source(name).render() for name in FIELDS},
        "withdrawn": row.withdrawn is not None,
        "withdrawn_text": row.withdrawn,
        "confirmable": row.confirmable,
        "note": row.note,
        "discrepancies": [d.to_json(row) for d in row.discrepancies],
        "origin": row.origin,
    }


def matrix_json(matrix: Matrix) -> dict[str, object]:
    """The whole data set: rows with sources, releases and supported upgrades."""
    return {
        "origins": list(matrix.origins),
        "rows": [_row_json(row) for row in matrix.rows],
        "releases": {
            p.value: {
                "versions": [str(v) for v in matrix.releases[p]],
                "source": matrix.release_sources.get(p, "PKS rows"),
            }
            for p in Product
        },
        "upgrades": {
            p.value: {
                "patches": matrix.upgrades[p].patches is not None,
                "patches_source": _opt(matrix.upgrades[p].patches),
                "hops": [
                    {
                        "from": h.source_spec.text,
                        "to": h.target_spec.text,
                        "source": h.source.render(),
                        "requires": {q.value: s.text for q, s in h.requires},
                        "text": h.text,
                        "note": h.note,
                        "origin": h.origin,
                    }
                    for h in matrix.upgrades[p].hops
                ],
            }
            for p in (Product.NSXT, Product.OPSMAN)
        },
    }


def _opt(cite: Citation | None) -> str | None:
    return None if cite is None else cite.render()


def check_text(result: CheckResult) -> str:
    """``supported: ...`` or ``NOT supported: ...``, the source, then any warnings."""
    head = "supported" if result.supported else "NOT supported"
    text = f"{head}: {result.reason}\nsource: {result.source}\n"
    for warning in result.warnings:
        text += f"warning: {warning}\n"
    for note in result.notes:
        text += f"note: {note}\n"
    return text


def path_text(result: PathResult) -> str:
    """Numbered steps with the state after each, or what blocks."""
    start, goal = result.start.describe(), result.goal.describe()
    if result.steps is None:
        blocked = result.blocked_by
        kind, why = (blocked.kind, blocked.reason) if blocked else ("unknown", "no path")
        return f"No supported path from {start} to {goal}.\nblocked by ({kind}): {why}\n"
    if not result.steps:
        return f"Already there: {start} meets {goal}.\n"
    count = len(result.steps)
    lines = [f"Path from {start} to {goal} ({count} step{'s' if count != 1 else ''}):"]
    for number, step in enumerate(result.steps, 1):
        lines.append(f"{number:>2}. upgrade {step.product.label} {step.old} \u2192 {step.new}")
        lines.append(f"    state after: {step.state_after.describe()}")
        lines.append(f"    why: {step.reason}")
        lines.append(f"    source: {step.source}")
        lines += [f"    warning: {w}" for w in step.warnings]
    return "\n".join(lines) + "\n"
