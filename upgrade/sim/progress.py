"""Operation progress: the queue of simulated operations' ends, in time order.

The world applies an operation's effects when its end comes; this queue hands the
records back in (end, arrival) order.  A record restarted or cut short since it was
queued is superseded: its old entry is dropped unread.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Mapping

from upgrade.sim.records import OpRecord


class Completions:
    """Ends of the operations in flight, earliest first."""

    def __init__(self) -> None:
        #: (end, arrival, unit, op): a heap, earliest first (read, never changed, by callers)
        self.heap: list[tuple[float, int, str, str]] = []
        self._seq = 0

    def add(self, rec: OpRecord) -> None:
        """Queue ``rec``'s end (nothing for one without an end: it hangs or waits)."""
        if rec.end is not None:
            self._seq += 1
            # the op itself: a StrEnum member is equal to (and hashes as) its value
            heapq.heappush(self.heap, (rec.end, self._seq, rec.unit, rec.op))

    def any_due(self, now: float) -> bool:
        """True when an end is queued at or before ``now`` (most calls find none)."""
        return bool(self.heap) and self.heap[0][0] <= now

    def earliest(self) -> float | None:
        """The earliest queued end (perhaps a superseded record's); None when none is."""
        return self.heap[0][0] if self.heap else None

    def due(self, now: float, ops: Mapping[tuple[str, str], OpRecord]) -> Iterator[OpRecord]:
        """Every record of ``ops`` whose queued end is at or before ``now``, in order.

        Lazy: the caller applies each before the next is looked at, so an effect that
        queues another end (an evacuation ending an entry) is seen in turn.
        """
        heap = self.heap
        while heap and heap[0][0] <= now:
            end, _, unit, op = heapq.heappop(heap)
            rec = ops.get((unit, op))
            if rec is None or rec.end != end or rec.applied:
                continue  # superseded by a newer attempt
            yield rec
