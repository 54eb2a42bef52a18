"""Text, Markdown and JSON renderings of the matrix, checks and paths (pure: return strings)."""

from __future__ import annotations

import io

from rich.console import Console
from rich.table import Table
from rich.text import Text

from upgrade.compat.matrix import CheckResult, Matrix, Product
from upgrade.compat.path import PathResult

#: marks a row whose facts are uncertain, in the text and Markdown tables
UNCERTAIN_MARK = "*"


def _pks_cell(text: str, uncertain: bool) -> str:
    return f"{text}{UNCERTAIN_MARK}" if uncertain else text


def matrix_markdown(matrix: Matrix) -> str:
    """The matrix as a Markdown table (vendor notation verbatim), then every row's source."""
    lines = ["| PKS | NSX-T | Ops Manager |", "|---|---|---|"]
    for row in matrix.rows:
        pks = _pks_cell(row.pks_text, row.uncertain)
        lines.append(f"| {pks} | {row.nsxt.text} | {row.opsman.text} |")
    lines += [
        "",
        f"{UNCERTAIN_MARK} uncertain: not checked against the vendor's text; see the note.",
        "",
        "Sources:",
        "",
    ]
    for row in matrix.rows:
        line = f"- {row.pks_text}: {row.source}"
        if row.note:
            line += f" ({'uncertain: ' if row.uncertain else 'note: '}{row.note})"
        lines.append(line)
    lines += ["", "Supported direct upgrades:", ""]
    for product in Product:
        rules = matrix.upgrades[product]
        for hop in rules.hops:
            flag = f" (uncertain: {hop.note})" if hop.uncertain else ""
            lines.append(f"- {product.label} {hop.describe()}: {hop.source}{flag}")
        if rules.patches:
            lines.append(f"- {product.label} patch releases of a series: {rules.patches_source}")
    return "\n".join(lines) + "\n"


def matrix_text(matrix: Matrix, width: int = 120) -> str:
    """The matrix as a rich table for terminals, with a source per row."""
    table = Table(title="PKS / NSX-T / Ops Manager compatibility", show_lines=False)
    table.add_column("PKS", no_wrap=True)
    table.add_column("NSX-T")
    table.add_column("Ops Manager")
    table.add_column("Source", overflow="fold")
    for row in matrix.rows:
        source = row.source + (f" [uncertain: {row.note}]" if row.uncertain else "")
        cells = (_pks_cell(row.pks_text, row.uncertain), row.nsxt.text, row.opsman.text, source)
        table.add_row(*(Text(cell) for cell in cells))
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, force_terminal=False, color_system=None)
    console.print(table)
    console.print(
        f"{UNCERTAIN_MARK} uncertain: not checked against the vendor's text.", markup=False
    )
    console.print("Supported direct upgrades:", markup=False)
    for product in Product:
        rules = matrix.upgrades[product]
        hops = ", ".join(h.describe() for h in rules.hops)
        patches = "; later patches within a series" if rules.patches else ""
        console.print(f"  {product.label}: {hops}{patches}", soft_wrap=True, markup=False)
    return buffer.getvalue()


def matrix_json(matrix: Matrix) -> dict[str, object]:
    """The whole data set: rows with sources, releases and supported upgrades."""
    return {
        "rows": [
            {
                "pks": row.pks_text,
                "nsxt": row.nsxt.text,
                "opsman": row.opsman.text,
                "source": row.source,
                "uncertain": row.uncertain,
                "note": row.note,
            }
            for row in matrix.rows
        ],
        "releases": {
            p.value: {
                "versions": [str(v) for v in matrix.releases[p]],
                "source": matrix.release_sources.get(p, ""),
            }
            for p in Product
        },
        "upgrades": {
            p.value: {
                "patches": matrix.upgrades[p].patches,
                "patches_source": matrix.upgrades[p].patches_source,
                "hops": [
                    {
                        "from": str(h.source_series),
                        "to": str(h.target_series),
                        "source": h.source,
                        "uncertain": h.uncertain,
                        "note": h.note,
                    }
                    for h in matrix.upgrades[p].hops
                ],
            }
            for p in Product
        },
    }


def check_text(result: CheckResult) -> str:
    """``supported: ...`` or ``NOT supported: ...``, then the source."""
    head = "supported" if result.supported else "NOT supported"
    return f"{head}: {result.reason}\nsource: {result.source}\n"


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
    return "\n".join(lines) + "\n"
