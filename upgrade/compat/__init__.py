"""PKS / NSX-T / Ops Manager compatibility: the sourced matrix, checks, paths and the gate.

* :func:`check` - is one combination supported, why, and the source;
* :func:`find_path` - the shortest sequence of supported single-product upgrades;
* :func:`gate` - the verdict ``plan`` and ``run`` apply to a playbook's ``compatibility:``.

The data lives in ``matrix.yaml`` beside this file (package data), loaded once by
:func:`load_matrix`.  Everything else is pure.
"""

from __future__ import annotations

from upgrade.compat.gate import GateVerdict, gate
from upgrade.compat.matrix import (
    CheckResult,
    Matrix,
    MatrixDataError,
    Product,
    Row,
    UnknownVersionError,
    check,
    load_matrix,
)
from upgrade.compat.path import Blocked, Goal, PathResult, State, Step, find_path
from upgrade.compat.ranges import VersionSpec

__all__ = [
    "Blocked",
    "CheckResult",
    "GateVerdict",
    "Goal",
    "Matrix",
    "MatrixDataError",
    "PathResult",
    "Product",
    "Row",
    "State",
    "Step",
    "UnknownVersionError",
    "VersionSpec",
    "check",
    "find_path",
    "gate",
    "load_matrix",
]
