"""The one error hierarchy of nsxt-upgrade.

Every error the command line shows carries its exit code, so the CLI maps
errors to exit codes in one place::

    UpgradeError (exit 1)            anything that failed or was aborted
    ├── AbortedError (exit 1)        the run was aborted: resume refuses it
    ├── InputError (exit 2)          a bad invocation or an invalid input file
    │   └── FileError (exit 2)       ... located at FILE:LINE:COL
    ├── RefusedError (exit 4)        incompatible versions, blocking findings
    ├── LockedError (exit 5)         another runner holds the state dir's lock
    ├── JournalError (exit 1)        the journal cannot be read or replayed
    │   └── DeterminismError         replay produced other actions than recorded
    └── AdapterError (exit 1)        a target system said no, or could not be reached
        └── TransientAdapterError    ... but trying again may work

Paused runs are not errors: the runner returns an outcome with exit code 3.
"""

from __future__ import annotations

from pathlib import Path


class UpgradeError(Exception):
    """Base of every error nsxt-upgrade raises on purpose."""

    exit_code = 1


class AbortedError(UpgradeError):
    """The run was closed for good by ``nsxt-upgrade abort``; it cannot be resumed."""


class InputError(UpgradeError):
    """A bad invocation or an invalid input that is not tied to a file position."""

    exit_code = 2


class FileError(InputError):
    """An invalid input file; the message reads ``FILE:LINE:COL: what is wrong``."""

    def __init__(self, path: Path | str, line: int, column: int, message: str) -> None:
        self.path = str(path)
        self.line = line
        self.column = column
        self.reason = message
        super().__init__(f"{self.path}:{line}:{column}: {message}")


class RefusedError(UpgradeError):
    """The upgrade must not start: incompatible versions or blocking findings."""

    exit_code = 4


class LockedError(UpgradeError):
    """Another runner holds the state directory's lock."""

    exit_code = 5


class JournalError(UpgradeError):
    """The journal is missing, corrupt, or from an incompatible version."""


class DeterminismError(JournalError):
    """Replaying the journal produced actions other than the recorded ones."""


class AdapterError(UpgradeError):
    """A target system refused an operation or could not be reached."""


class TransientAdapterError(AdapterError):
    """An adapter error that may go away if the operation is tried again."""
