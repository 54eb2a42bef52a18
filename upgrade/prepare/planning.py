"""Preparing an upgrade: everything ``plan`` and ``run`` do before the first action.

:func:`prepare` reads the playbook and its inventory, checks the operator's
``--ack`` ids, finds the upgrade flow of the hop (the Upgrade Coordinator's order of the
target release; a hop without one is refused), gates the PKS / NSX-T / Ops Manager
compatibility for the current and the target NSX-T version, builds the plan in the
flow's order and estimates it.  It
reads the input files and nothing else: no network, no clock, no writes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from upgrade.compat.flows import flow_for, no_flow_reason
from upgrade.compat.gate import gate
from upgrade.compat.load import load_with_overlay
from upgrade.compat.matrix import Product, UnknownVersionError
from upgrade.core.model import Inventory, Playbook
from upgrade.core.plan import BUNDLE_UNVERIFIED, Plan, build_plan, refused_for_flow
from upgrade.errors import InputError
from upgrade.gcpause import collector_paused
from upgrade.inputs.playbook import Loaded, load
from upgrade.inputs.yamlio import Where, load_yaml
from upgrade.prepare import warnings
from upgrade.sim.estimate import estimate, with_recorded_estimates


class Verdict(Protocol):
    """What planning uses of the compatibility gate's verdict."""

    @property
    def ok(self) -> bool:
        """True when the upgrade keeps PKS and Ops Manager supported."""

    def to_json(self) -> Mapping[str, object]:
        """The verdict as plain JSON data."""


@dataclass(frozen=True, slots=True)
class RecordedVerdict:
    """The compatibility verdict as a plan recorded it (a run's state dir: not gated again)."""

    ok: bool
    verdict: Mapping[str, object]

    def to_json(self) -> Mapping[str, object]:
        """The verdict as plain JSON data."""
        return self.verdict


@dataclass(frozen=True, slots=True)
class Prepared:
    """A validated playbook, its inventory, the compatibility verdict and the estimated plan.

    Made once per command (``plan``, ``run``; ``resume``, ``status`` and ``verify`` get it
    from what the run's state dir recorded) and shared by everything that follows.
    """

    loaded: Loaded
    inventory: Inventory
    plan: Plan
    verdict: Verdict

    @property
    def playbook(self) -> Playbook:
        """The validated playbook."""
        return self.loaded.playbook

    @classmethod
    def recorded(cls, loaded: Loaded, inventory: Inventory, plan: Plan) -> Prepared:
        """A run's prepared value as its state dir recorded it: the verdict is the plan's."""
        return cls(loaded, inventory, plan, RecordedVerdict(plan.compatible, plan.compatibility))


def prepare(
    playbook_path: Path, acks: Sequence[str] = (), inventory: Inventory | None = None,
    recorded_plan: Mapping[str, Any] | None = None, matrix: Path | None = None,
    strict: bool = False, start_at: float | None = None,
) -> Prepared:
    """Load, validate, gate and plan ``playbook_path`` (see :func:`prepare_loaded`).

    ``inventory`` is for adapters that discover it (``nsxt``) or a run's recorded copy;
    the simulated adapter's otherwise comes from its file.
    """
    return prepare_loaded(load(playbook_path, inventory), acks, recorded_plan=recorded_plan,
                          matrix=matrix, strict=strict, start_at=start_at)


def prepare_loaded(
    loaded: Loaded, acks: Sequence[str] = (), *,
    recorded_plan: Mapping[str, Any] | None = None, matrix: Path | None = None,
    strict: bool = False, start_at: float | None = None,
    saved_plan: Mapping[str, Any] | None = None,
) -> Prepared:
    """Gate and plan a playbook already read with its inventory (:func:`load` made it).

    ``acks`` are the operator's ``--ack`` warning ids; each must name a warning
    the inventory reports.  Invalid input raises :class:`~upgrade.errors.InputError`
    (exit 2); a plan that must not run is returned with ``plan.refusals`` set, never
    raised, so callers can still show it.  ``matrix`` is a site's compatibility data
    (``--matrix``), laid over the built-in data after the playbook's own
    ``compatibility.matrix``; ``strict`` refuses where vendor documents disagree.
    ``start_at`` (epoch seconds) is when the run starts on the calendar (``--start-at``,
    or now: the caller reads the clock), for the estimate across a maintenance window.
    ``recorded_plan`` (a plan's JSON) gives the estimates instead of simulating them;
    ``saved_plan`` (``run --plan``: a saved plan the caller checks against this one) gives
    them with its schedule.
    """
    with collector_paused():
        return _prepare(loaded, acks, recorded_plan, matrix, strict, start_at, saved_plan)


def _prepare(loaded: Loaded, acks: Sequence[str], recorded_plan: Mapping[str, Any] | None,
             matrix: Path | None, strict: bool, start_at: float | None,
             saved_plan: Mapping[str, Any] | None = None) -> Prepared:
    playbook_path = loaded.path
    inv = loaded.inventory
    if inv is None:
        raise InputError(
            f"{playbook_path}: the {loaded.playbook.inventory.adapter} adapter discovers its "
            "inventory from the manager, which planning without a connection cannot do; "
            "plan with the simulated adapter and an inventory file"
        )
    unverified = bool(loaded.playbook.bundle.path and not loaded.playbook.bundle.sha256)
    settings = warnings.setting_warnings(loaded.playbook, inv, acks)
    check_acks(acks, inv, ((BUNDLE_UNVERIFIED,) if unverified else ())
               + tuple(f.id for f in settings))
    target = loaded.playbook.target_version
    flow = flow_for(inv.version, target)
    if flow is None:  # refused before the gate: never planned in another release's order
        reason = no_flow_reason(inv.version, target)
        return Prepared(loaded, inv, refused_for_flow(loaded.playbook, inv, reason),
                        RecordedVerdict(False, {"supported": False, "reason": reason}))
    declared = loaded.playbook.compatibility
    site = playbook_path.parent / declared.matrix if declared.matrix else None
    data = load_with_overlay(site, matrix)
    try:
        verdict = gate(declared, inv.version, loaded.playbook.target_version, data,
                       strict or declared.strict)
    except UnknownVersionError as exc:
        where = _declared_at(exc, loaded)
        if where is None:
            raise
        raise where.error(str(exc)) from None
    plan = build_plan(loaded.playbook, inv, acks, dict(verdict.to_json()), verdict.ok, flow)
    if settings:
        plan = replace(plan, findings=plan.findings + tuple(settings))
    if recorded_plan is not None:
        return Prepared(loaded, inv, with_recorded_estimates(plan, recorded_plan), verdict)
    if saved_plan is not None:
        return Prepared(loaded, inv, with_recorded_estimates(plan, saved_plan, schedule=True,
                                                             start_at=start_at), verdict)
    return Prepared(loaded, inv, estimate(plan, inv, loaded.playbook, start_at), verdict)


def check_acks(acks: Sequence[str], inventory: Inventory, extra: Sequence[str] = ()) -> None:
    """Every ``--ack`` id names a warning of ``inventory`` (or one of the plan's own
    warnings, ``extra``); otherwise an InputError (exit 2)."""
    known = [w.id for w in inventory.warnings] + list(extra)
    errors = {e.id for e in inventory.errors}
    for ack in acks:
        if ack in known:
            continue
        if ack in errors:
            raise InputError(
                f"--ack {ack}: {ack} is an error, and errors cannot be acknowledged: "
                "fix what it reports, then plan again"
            )
        listed = ", ".join(dict.fromkeys(known)) if known else "none: the inventory reports none"
        raise InputError(
            f"--ack {ack}: no pre-check warning has that id; known warning ids: {listed}"
        )


def _declared_at(exc: UnknownVersionError, loaded: Loaded) -> Where | None:
    """Where the playbook or inventory gives the version the matrix does not know."""
    playbook = loaded.playbook
    if exc.product is not Product.NSXT:
        return _find(loaded.path, "compatibility", exc.product.value)
    if exc.version == playbook.target_version:
        return _find(loaded.path, "target_version")
    if playbook.inventory.source and loaded.inventory is not None:
        return _find(loaded.path.parent / playbook.inventory.source, "nsx", "version")
    return None


def _find(path: Path, *keys: str) -> Where | None:
    node = load_yaml(path)
    for key in keys:
        if not isinstance(node.value, dict) or key not in node.value:
            return None
        node = node.value[key]
    return node.where
