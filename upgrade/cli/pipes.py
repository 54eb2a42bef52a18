"""Reading commands whose reader went away: ``nsxt-upgrade status | head -1``.

click answers a closed stdout (EPIPE) with exit 1, "failed", so ``set -o pipefail``
scripts see ``status | head`` fail although status read the run and wrote what the
reader wanted.  The commands that only read (status, report, history, verify) stop
writing quietly instead and exit 0; anything else they would have printed is dropped.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from collections.abc import Callable, Iterator
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


@contextlib.contextmanager
def reader_may_leave() -> Iterator[None]:
    """Exit 0, silently, when stdout's reader has gone away (EPIPE)."""
    try:
        yield
        sys.stdout.flush()
    except BrokenPipeError:
        _stdout_to_devnull()  # the interpreter's last flush must not fail again
        sys.exit(0)


def quiet_on_closed_stdout(command: Callable[P, R]) -> Callable[P, R]:
    """Decorate a reading command's function with :func:`reader_may_leave`."""
    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with reader_may_leave():
            return command(*args, **kwargs)
    return wrapper


def _stdout_to_devnull() -> None:
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
