"""Pausing Python's cycle collector while a large, acyclic structure is built."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cycle collector for the block (and leave it as it was after; blocks nest).

    For blocks that build hundreds of thousands of long-lived objects with next to no
    cyclic garbage (a large inventory's YAML graph, the plan, the estimate's drive, a run
    rebuilt from its record): the collector would walk them all again every few hundred
    allocations and find nothing. Reference counting still frees everything that is not
    a cycle.
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()
