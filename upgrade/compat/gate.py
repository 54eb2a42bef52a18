"""The compatibility gate that ``plan`` and ``run`` apply before any upgrade.

The playbook's ``compatibility:`` names the PKS and Ops Manager versions running on
top of NSX-T.  The gate refuses (exit 4) when the *target* combination is not
supported, or when current -> target is not a supported direct NSX-T upgrade; then
it suggests the shortest path that gets there safely.  An upgrade that turns an
unsupported current combination into a supported one is allowed: not upgrading
would leave it unsupported too.  Where vendor documents disagree about the
target combination, the verdict carries the discrepancies as warnings (and,
``strict``, refuses).  A withdrawn PKS release is not supported, as in ``compat
check``: the suggested path moves PKS off it first.

Pure: takes versions, returns a :class:`GateVerdict`.
"""

from __future__ import annotations

from dataclasses import dataclass

from upgrade.compat.checking import CheckResult, check
from upgrade.compat.load import load_matrix
from upgrade.compat.matrix import Matrix
from upgrade.compat.path import Goal, State, Step, find_path
from upgrade.compat.products import Product
from upgrade.core.model import Compatibility
from upgrade.core.versions import Version


@dataclass(frozen=True, slots=True)
class GateVerdict:
    """The outcome of the compatibility gate; ``ok`` False means refuse with exit 4."""

    ok: bool
    #: one human sentence
    reason: str
    #: None when nothing was declared
    current_supported: bool | None
    target_supported: bool | None
    source: str | None
    #: when refused and a path exists: the steps, as in ``compat path``
    suggested_path: tuple[Step, ...] | None
    pks: Version | None = None
    opsman: Version | None = None
    current_nsxt: Version | None = None
    target_nsxt: Version | None = None
    #: vendor documents that disagree about the target combination, one sentence each
    warnings: tuple[str, ...] = ()
    discrepancies: tuple[dict[str, object], ...] = ()
    #: the data files the verdict used (``built-in`` and any site ``--matrix`` file)
    origins: tuple[str, ...] = ()

    def to_json(self) -> dict[str, object]:
        """The plan JSON's ``"compatibility"`` object."""
        return {
            "ok": self.ok,
            "reason": self.reason,
            "current_supported": self.current_supported,
            "target_supported": self.target_supported,
            "source": self.source,
            "suggested_path": (
                None if self.suggested_path is None else [s.to_json() for s in self.suggested_path]
            ),
            "pks": _opt(self.pks),
            "opsman": _opt(self.opsman),
            "current_nsxt": _opt(self.current_nsxt),
            "target_nsxt": _opt(self.target_nsxt),
            "warnings": list(self.warnings),
            "discrepancies": list(self.discrepancies),
            "matrix": list(self.origins),
        }


def _opt(version: Version | None) -> str | None:
    return None if version is None else str(version)


def gate(
    compat: Compatibility,
    current_nsxt: Version,
    target_nsxt: Version,
    matrix: Matrix | None = None,
    strict: bool = False,
) -> GateVerdict:
    """Decide whether NSX-T may go from ``current_nsxt`` to ``target_nsxt`` under ``compat``.

    Raises :class:`~upgrade.compat.matrix.UnknownVersionError` (an ``InputError``, exit 2)
    when a declared version is unknown to the matrix.
    """
    m = matrix if matrix is not None else load_matrix()
    pks, opsman = compat.pks, compat.opsman
    found: CheckResult | None = None

    def verdict(
        ok: bool,
        reason: str,
        current: bool | None = None,
        target: bool | None = None,
        source: str | None = None,
        path: tuple[Step, ...] | None = None,
    ) -> GateVerdict:
        warnings = found.warnings if found is not None else ()
        discrepancies = (
            tuple(d.to_json(found.row) for d in found.discrepancies) if found is not None else ()
        )
        return GateVerdict(
            ok, reason, current, target, source, path, pks, opsman, current_nsxt, target_nsxt,
            warnings, discrepancies, m.origins,
        )

    if pks is None:
        if opsman is None:
            return verdict(
                True,
                "No PKS or Ops Manager version is declared under compatibility:, "
                "so compatibility was not checked.",
            )
        return verdict(
            True,
            f"Only Ops Manager {opsman} is declared; the matrix relates Ops Manager to NSX-T "
            "through PKS, so compatibility was not checked (declare pks: too).",
        )

    current = check(pks, current_nsxt, opsman, m)
    target = found = check(pks, target_nsxt, opsman, m)
    on_top = f"PKS {pks}" + ("" if opsman is None else f" with Ops Manager {opsman}")
    problems = []
    if not target.supported:
        problems.append(target.reason.removeprefix("Refused: "))
    elif strict and target.discrepancies:
        problems.append(f"(--strict) {' '.join(w + '.' for w in target.warnings)}")
    route = _route_problem(m, State(pks, current_nsxt, opsman), target_nsxt)
    if route is not None:
        problems.append(route)

    if problems:
        path = _suggest(m, State(pks, current_nsxt, opsman), target_nsxt, strict)
        if path:
            hint = f" Suggested path: {'; '.join(_short(s) for s in path)}."
        elif path is None:
            hint = f" No supported path to NSX-T {target_nsxt} exists from here."
        else:
            hint = ""
        return verdict(
            False,
            f"Refused: {' '.join(problems)}{hint}",
            current.supported,
            target.supported,
            target.source,
            path or None,
        )

    if target_nsxt == current_nsxt:
        reason = f"NSX-T is already at {target_nsxt}; {target.reason}"
    elif current.supported:
        reason = (
            f"{on_top} is supported on both NSX-T {current_nsxt} and {target_nsxt}, and "
            f"{_how(m, current_nsxt, target_nsxt)}."
        )
    else:
        reason = (
            f"{on_top} is not supported on the current NSX-T {current_nsxt} but is on "
            f"{target_nsxt}: this upgrade fixes that (not upgrading would leave the combination "
            f"unsupported too), and {_how(m, current_nsxt, target_nsxt)}."
        )
    if target.warnings:
        reason += " Warning: " + " ".join(w + "." for w in target.warnings)
    return verdict(True, reason, current.supported, target.supported, target.source)


def _route_problem(matrix: Matrix, state: State, new: Version) -> str | None:
    """Why NSX-T cannot go from ``state.nsxt`` to ``new`` in one upgrade, or None."""
    old = state.nsxt
    if new == old:
        return None
    if new < old:
        return f"NSX-T cannot be downgraded from {old} to {new}."
    rules = matrix.upgrades[Product.NSXT]
    if not rules.allows(old, new, state):
        hop = rules.hop(old, new)
        unmet = hop.unmet(state) if hop is not None else None
        if unmet is not None:
            return (
                f"NSX-T {old} \u2192 {new} needs {unmet} first "
                f"({hop.source.render() if hop else ''})."
            )
        return f"NSX-T {old} \u2192 {new} is not a supported direct upgrade."
    return None


def _how(matrix: Matrix, old: Version, new: Version) -> str:
    hop = matrix.upgrades[Product.NSXT].hop(old, new)
    if hop is None:
        return f"{old} \u2192 {new} is a patch upgrade"
    return (
        f"{old} \u2192 {new} is a supported direct upgrade ({hop.describe()}), "
        f"per {hop.source.render()}"
    )


def _suggest(
    matrix: Matrix, start: State, target_nsxt: Version, strict: bool
) -> tuple[Step, ...] | None:
    """The shortest path to ``target_nsxt``, keeping PKS and Ops Manager if possible."""
    kept = find_path(matrix, start, Goal(start.pks, target_nsxt, start.opsman), strict)
    if kept.steps is not None:
        return kept.steps
    return find_path(matrix, start, Goal(None, target_nsxt, None), strict).steps


def _short(step: Step) -> str:
    return f"{step.product.label} {step.old} \u2192 {step.new}"
