"""Checking one PKS / NSX-T / Ops Manager combination against the data: :func:`check`."""

from __future__ import annotations

from dataclasses import dataclass

from upgrade.compat.catalogue import catalogue_note
from upgrade.compat.load import load_matrix
from upgrade.compat.matrix import Discrepancy, Matrix, Row, UnknownVersionError
from upgrade.compat.products import Product
from upgrade.core.versions import Version


@dataclass(frozen=True, slots=True)
class CheckResult:
    """Whether one PKS / NSX-T / Ops Manager combination is supported, and why."""

    supported: bool
    pks: Version
    nsxt: Version
    opsman: Version | None
    reason: str
    source: str
    row: Row
    #: the notes accept the combination (``supported`` also needs: not withdrawn, not strict)
    compatible: bool = True
    discrepancies: tuple[Discrepancy, ...] = ()
    #: remarks on the versions asked about (one not in the catalogue of known releases)
    notes: tuple[str, ...] = ()

    @property
    def withdrawn(self) -> bool:
        """True when the PKS release was withdrawn from download."""
        return self.row.withdrawn is not None

    @property
    def warnings(self) -> tuple[str, ...]:
        """Every recorded discrepancy that bears on this combination, as a sentence."""
        return tuple(d.describe(self.row) for d in self.discrepancies)

    def to_json(self) -> dict[str, object]:
        """The ``compat check --format json`` document (contract, plus a few extra keys)."""
        return {
            "supported": self.supported,
            "pks": str(self.pks),
            "nsxt": str(self.nsxt),
            "opsman": None if self.opsman is None else str(self.opsman),
            "reason": self.reason,
            "source": self.source,
            "discrepancies": [d.to_json(self.row) for d in self.discrepancies],
            "withdrawn": self.withdrawn,
            "compatible": self.compatible,
            "confirmable": self.row.confirmable,
            "origin": self.row.origin,
            "note": self.row.note,
            "notes": list(self.notes),
        }


def check(
    pks: Version,
    nsxt: Version,
    opsman: Version | None = None,
    matrix: Matrix | None = None,
    strict: bool = False,
) -> CheckResult:
    """Is PKS ``pks`` supported on NSX-T ``nsxt`` (with Ops Manager ``opsman``)?

    A combination the release notes accept is supported unless the release was
    withdrawn; where another vendor document reads a cell differently for these
    versions, the discrepancy is returned, and ``strict`` refuses on it.
    Raises :class:`UnknownVersionError` (exit 2) for versions the data does not know.
    """
    if matrix is None:
        matrix = load_matrix()  # read once, on first use
    m = matrix
    row = m.row_for(pks)
    if row is None:
        raise UnknownVersionError(Product.PKS, pks, m.nearest(Product.PKS, pks))
    asked = [(Product.NSXT, nsxt)] + ([(Product.OPSMAN, opsman)] if opsman is not None else [])
    for product, version in asked:
        m.require_known(product, version)
    notes = tuple(n for p, v in asked if (n := catalogue_note(m, p, v)) is not None)
    nsxt_ok = row.accepts("nsxt", nsxt)
    opsman_ok = opsman is None or row.accepts("opsman", opsman)
    compatible = nsxt_ok and opsman_ok
    found = row.disagreements("nsxt", nsxt)
    if opsman is not None:
        found += row.disagreements("opsman", opsman)
    if compatible:
        reason = _supported_reason(row, pks, nsxt, opsman)
    else:
        reason = _unsupported_reason(row, pks, nsxt, opsman, nsxt_ok, opsman_ok)
    supported = compatible
    if row.withdrawn is not None:
        supported = False
        where = row.withdrawn_source.render() if row.withdrawn_source else row.source.render()
        reason = f"Refused: PKS {pks} was withdrawn: {row.withdrawn!r} ({where}). " + reason
    if strict and supported and found:
        supported = False
        reason = f"Refused (--strict): vendor documents disagree. {reason}"
    if not row.confirmable:
        reason += f" (not confirmable from the notes' final text: {row.note})"
    return CheckResult(
        supported, pks, nsxt, opsman, reason, row.source.render(), row, compatible, found,
        notes,
    )


def _supported_reason(row: Row, pks: Version, nsxt: Version, opsman: Version | None) -> str:
    text = f"PKS {pks} supports NSX-T {nsxt} (listed: {row.nsxt.text})"
    if opsman is not None:
        text += f" with Ops Manager {opsman} (listed: {row.opsman.text})"
    else:
        text += "; Ops Manager was not checked"
    return text + "."


def _unsupported_reason(
    row: Row, pks: Version, nsxt: Version, opsman: Version | None, nsxt_ok: bool, opsman_ok: bool
) -> str:
    needs: list[str] = []
    bad: list[str] = []
    if not nsxt_ok:
        needs.append(f"NSX-T {row.nsxt.describe()}")
        bad.append(f"NSX-T {nsxt}")
    if not opsman_ok:
        needs.append(f"Ops Manager {row.opsman.describe()}")
        bad.append(f"Ops Manager {opsman}")
    verb = "is" if len(bad) == 1 else "are"
    return f"PKS {pks} needs {' and '.join(needs)}; {' and '.join(bad)} {verb} not supported."
