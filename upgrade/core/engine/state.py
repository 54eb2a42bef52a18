"""What the engine knows between two events."""

from __future__ import annotations

from enum import StrEnum


class Stop(StrEnum):
    """Whether the engine is stopping, and how it settles once in-flight work has drained."""

    NONE = ""  #: not stopping
    PAUSE = "pause"  #: pause: an operator resumes
    ABORT = "abort"  #: fail (``on_error: abort``): an operator fixes the cause, then resumes
