"""Why one upgrade step is allowed, which documents say so, and what to watch out for."""

from __future__ import annotations

from upgrade.compat.matrix import Matrix, Row
from upgrade.compat.moves import Search
from upgrade.compat.products import Product
from upgrade.compat.states import State, Step


def step_explained(
    matrix: Matrix, before: State, step: Step, how: Search
) -> tuple[str, str, tuple[str, ...]]:
    """``(reason, source, warnings)`` for ``step`` taken from ``before``."""
    product, old, new, after = step.product, step.old, step.new, step.state_after
    sources: list[str] = []
    warnings: list[str] = []
    if product is Product.PKS:
        target = matrix.row_for(new)
        assert target is not None and target.upgrade_from is not None
        quoted = f": {target.upgrade_text!r}" if target.upgrade_text else ""
        how_text = (
            f"PKS {old} \u2192 {new} is supported by {target.pks_text}'s notes "
            f"(from {target.upgrade_from.text}{quoted})"
        )
        sources.append(target.field_source("upgrade_from").render())
        warnings += [d.describe(target) for d in target.disagreements("upgrade_from", old)]
    else:
        rules = matrix.upgrades[product]
        hop = rules.hop(old, new)
        label = product.label
        if rules.is_patch(old, new):
            how_text = f"{label} {old} \u2192 {new} is a patch upgrade within its series"
            if rules.patches is not None:
                sources.append(rules.patches.render())
        elif hop is not None and hop.unmet(before) is None:
            how_text = (
                f"{label} {old} \u2192 {new} is a supported direct upgrade ({hop.describe()})"
            )
            if hop.requires:
                needs = ", ".join(f"{p.label} {s.text}" for p, s in hop.requires)
                how_text += f", which needs {needs}"
            if hop.text:
                how_text += f": {hop.text!r}"
            if hop.note:
                how_text += f" ({hop.note})"
            sources.append(hop.source.render())
        else:
            assert rules.one_minor is not None
            text, cite = rules.one_minor
            how_text = f"{label} {old} \u2192 {new} skips a minor version"
            warnings.append(
                f"{label} {old} \u2192 {new} skips a minor version, against the vendor's "
                f"advice: {text!r} ({cite.render()})"
            )
            sources.append(cite.render())
    row = matrix.row_for(after.pks)
    assert row is not None
    fit = f"PKS {after.pks} supports NSX-T {after.nsxt}"
    if after.opsman is not None:
        fit += f" with Ops Manager {after.opsman}"
    fit += f" ({row.pks_text}: NSX-T {row.nsxt.text}; Ops Manager {row.opsman.text})"
    sources.append(_row_sources(row))
    warnings += [d.describe(row) for d in row.disagreements("nsxt", after.nsxt)]
    if after.opsman is not None:
        warnings += [d.describe(row) for d in row.disagreements("opsman", after.opsman)]
    if not row.confirmable:
        warnings.append(f"{row.pks_text}'s Ops Manager list is not confirmable: {row.note}")
    return f"{how_text}; {fit}", "; ".join(dict.fromkeys(sources)), tuple(warnings)


def _row_sources(row: Row) -> str:
    cites = [row.field_source("nsxt").render(), row.field_source("opsman").render()]
    return "; ".join(dict.fromkeys(cites))
