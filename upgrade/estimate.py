"""Estimated durations: the makespan the engine achieves against a fault-free simulated world.

(Being built: for now the plan is returned without estimates.)
"""

from __future__ import annotations

from upgrade.model import Inventory
from upgrade.plan import Plan


def estimate(plan: Plan, inventory: Inventory) -> Plan:
    """``plan`` with per-phase and total estimated durations and its schedule bars."""
    return plan
