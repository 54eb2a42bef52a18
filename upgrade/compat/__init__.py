"""PKS / NSX-T / Ops Manager compatibility: the sourced matrix, checks, paths and the gate.

* :func:`check` - is one combination supported, why, and the source;
* :func:`find_path` - the shortest sequence of supported single-product upgrades;
* :func:`gate` - the verdict ``plan`` and ``run`` apply to a playbook's ``compatibility:``.

The data lives in ``matrix.yaml`` beside this file (package data), loaded once by
:func:`load_matrix`; a site's own rows and hops are laid over it by
:func:`load_with_overlay`.  Everything else is pure.
"""

from __future__ import annotations

from upgrade.compat.checking import CheckResult, check
from upgrade.compat.gate import GateVerdict, gate
from upgrade.compat.load import load_matrix, load_with_overlay
from upgrade.compat.matrix import (
    Discrepancy,
    Hop,
    Matrix,
    MatrixDataError,
    Row,
    UnknownVersionError,
    UpgradeRules,
)
from upgrade.compat.path import Blocked, Goal, PathResult, State, Step, find_path
from upgrade.compat.products import Product
from upgrade.compat.ranges import VersionSpec

__all__ = [
    "Blocked",
    "CheckResult",
    "Discrepancy",
    "GateVerdict",
    "Goal",
    "Hop",
    "Matrix",
    "MatrixDataError",
    "PathResult",
    "Product",
    "Row",
    "State",
    "Step",
    "UnknownVersionError",
    "UpgradeRules",
    "VersionSpec",
    "check",
    "find_path",
    "gate",
    "load_matrix",
    "load_with_overlay",
]
