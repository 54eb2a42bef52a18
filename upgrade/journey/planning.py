"""The journey's plan: its steps, each NSX-T hop planned and estimated by this engine.

Reads the journey file, the site playbook and its inventory (with the ``nsxt`` adapter:
discovered from the manager, read-only), and Ops Manager when the journey names one;
writes nothing except each hop's inputs into a temporary directory that is removed.
"""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from upgrade.compat.load import load_with_overlay
from upgrade.compat.matrix import Matrix, Product
from upgrade.compat.path import Goal, PathResult, State
from upgrade.core.model import Inventory
from upgrade.inputs.playbook import Loaded, load
from upgrade.journey.hops import hop_inventory, write_hop_inputs
from upgrade.journey.route import JourneyStep, plan_route
from upgrade.journey.spec import BundleEntry, JourneySpec
from upgrade.prepare.inputs import with_inventory
from upgrade.prepare.planning import prepare
from upgrade.render.plan_json import plan_to_json


@dataclass(frozen=True, slots=True)
class Site:
    """The site playbook as read once, the compatibility data it names, and its inventory."""

    loaded: Loaded
    matrix: Matrix
    strict: bool

    @property
    def simulated(self) -> bool:
        """True for the simulated adapter (its inventory is a file the journey rewrites)."""
        return self.loaded.playbook.inventory.adapter == "simulated"

    @property
    def inventory(self) -> Inventory:
        """The site's inventory (read from its file, or discovered)."""
        assert self.loaded.inventory is not None
        return self.loaded.inventory


def read_site(spec: JourneySpec, discover: bool = True) -> Site:
    """Read the site playbook (and its inventory; ``discover`` asks the manager for it)."""
    loaded = load(spec.site)
    if discover:
        loaded = asyncio.run(with_inventory(loaded))
    compat = loaded.playbook.compatibility
    overlay = spec.site.parent / compat.matrix if compat.matrix else None
    return Site(loaded, load_with_overlay(overlay), compat.strict)


@dataclass(frozen=True, slots=True)
class HopPlan:
    """One NSX-T hop as this engine plans it."""

    step: JourneyStep
    bundle: BundleEntry
    plan: dict[str, Any]

    @property
    def estimated_duration_s(self) -> float:
        """The engine's estimate of the hop."""
        return float(self.plan["estimated_duration_s"])


@dataclass(frozen=True, slots=True)
class JourneyPlan:
    """Every step of the journey, with each hop's plan."""

    spec: JourneySpec
    start: State
    result: PathResult
    steps: tuple[JourneyStep, ...]
    hops: dict[int, HopPlan] = field(default_factory=dict)

    @property
    def refusals(self) -> list[str]:
        """Why the journey must not start (exit 4): no path, or a hop the engine refuses."""
        out = []
        if not self.result.found:
            blocked = self.result.blocked_by
            why = blocked.reason if blocked is not None else "no supported path"
            out.append(f"no supported path from {self.start.describe()} to "
                       f"{self.result.goal.describe()}: {why}")
        for hop in self.hops.values():
            out += [f"step {hop.step.n} ({hop.step.title()}): {r}" for r in hop.plan["refusals"]]
        return out

    @property
    def estimated_duration_s(self) -> float:
        """The NSX-T hops' estimates added up (the operator's steps are not estimated)."""
        return sum(h.estimated_duration_s for h in self.hops.values())


def goal_of(spec: JourneySpec) -> Goal:
    """Where the journey goes."""
    return Goal(spec.goal_pks, spec.goal_nsxt, spec.goal_opsman)


def require_bundles(spec: JourneySpec, steps: tuple[JourneyStep, ...]) -> dict[int, BundleEntry]:
    """Each hop's bundle; a FileError (exit 2) at ``bundles`` naming every hop without one."""
    found: dict[int, BundleEntry] = {}
    missing: list[JourneyStep] = []
    for step in steps:
        if not step.is_hop:
            continue
        bundle = spec.bundle_for(step.new)
        if bundle is None:
            missing.append(step)
        else:
            found[step.n] = bundle
    if missing:
        named = ", ".join(f"NSX-T {s.new} (step {s.n}: {s.title()})" for s in missing)
        raise spec.bundles_where.error(
            f"bundles: no upgrade bundle for {named}; add \"{missing[0].new}\": {{path: ..., "
            "sha256: ...}} (or url:) under bundles")
    return found


def check_site_version(spec: JourneySpec, site: Site) -> None:
    """The site's inventory must report the journey's starting NSX-T version."""
    if site.inventory.version != spec.nsxt:
        raise spec.from_where.error(
            f"from.nsxt is {spec.nsxt}, but the site's inventory ({site.loaded.path}) reports "
            f"NSX-T {site.inventory.version}")


def plan_journey(spec: JourneySpec, site: Site, start: State,
                 acks: tuple[str, ...] = ()) -> JourneyPlan:
    """The journey's steps from ``start``, every NSX-T hop planned and estimated."""
    check_site_version(spec, site)
    result, steps = plan_route(site.matrix, start, goal_of(spec), site.strict)
    if not result.found:
        return JourneyPlan(spec, start, result, steps)
    bundles = require_bundles(spec, steps)
    hops: dict[int, HopPlan] = {}
    with tempfile.TemporaryDirectory(prefix="nsxt-journey-plan-") as temp:
        for step in steps:
            if not step.is_hop:
                continue
            inventory = hop_inventory(site.inventory, step)
            playbook = write_hop_inputs(Path(temp) / step.slug, spec, step, bundles[step.n],
                                        site.inventory if site.simulated else None)
            prepared = prepare(playbook, acks, inventory=inventory)
            hops[step.n] = HopPlan(step, bundles[step.n], plan_to_json(prepared.plan))
    return JourneyPlan(spec, start, result, steps, hops)


def product_label(kind: str) -> str:
    """``PKS``, ``NSX-T``, ``Ops Manager``."""
    return Product(kind).label
