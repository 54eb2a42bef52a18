"""The adapter protocol: start an operation, ask how it stands, close.

DESIGN lists named operations (``upload_bundle``, ``enter_maintenance``, …).
Every one of them is *start + poll* addressed by unit id, so the protocol
takes the operation as data (:class:`~upgrade.core.model.Op`) instead: one
``start`` and one ``status``.  That keeps the runner's reconciliation, the
journal and a future Temporal activity uniform over all operations; each
adapter dispatches on the ``Op`` internally.

Errors: raise :class:`~upgrade.errors.TransientAdapterError` for what may go
away on its own (refused for now, 5xx, connection refused, time-outs) and
:class:`~upgrade.errors.AdapterError` for the rest, translated at the boundary
with ``raise ... from exc``.
"""

from __future__ import annotations

from typing import Protocol

from upgrade.core.engine.outcome import OpStatus
from upgrade.core.model import Inventory, Op


class Adapter(Protocol):
    """What the runner needs from a target system."""

    async def inventory(self) -> Inventory:
        """What the target holds: units, clusters, VMs, versions."""
        ...

    async def start(
        self, op: Op, unit: str, moves: tuple[tuple[str, str], ...] = ()
    ) -> float | None:
        """Start ``op`` on ``unit`` (idempotently); return the expected end in clock time."""
        ...

    async def status(self, op: Op, unit: str) -> OpStatus:
        """How ``op`` on ``unit`` stands now; derived from the target, never cached."""
        ...

    async def unit_version(self, unit: str) -> str:
        """The version ``unit`` reports now."""
        ...

    async def close(self) -> None:
        """Release connections and files."""
        ...
