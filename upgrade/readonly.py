"""Open a state directory's SQLite databases for reading only, even on read-only storage.

``status`` and ``sim show`` only read, so they must work on a read-only copy of a
state directory (a backup, a mounted snapshot), and leave nothing behind in a writable
one.  Where the directory can be written:

* a ``-wal`` file is there (a runner is live, or was killed): ``mode=ro`` reads it as
  it is, creating nothing;
* no ``-wal`` file: a ``mode=ro`` reader would create an empty ``-wal`` and ``-shm``
  and, being read-only, never remove them; the database is opened read-write with
  ``PRAGMA query_only`` instead, so SQLite removes both when the last connection
  closes (and a runner starting meanwhile shares them as usual).

Where the directory cannot be written, SQLite could not create the ``-shm`` index that
WAL readers need, so:

* no ``-wal`` file beside the database: every committed transaction is in the main
  file, which is opened with ``immutable=1`` (no ``-shm`` needed);
* ``-wal`` and ``-shm`` both there (a runner was killed): ``mode=ro`` reads them as
  they are;
* a ``-wal`` without its ``-shm``: the two files are copied to a private temporary
  directory, opened there (SQLite rebuilds the index) and copied into memory.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
from pathlib import Path
from urllib.parse import quote


def can_write(directory: Path) -> bool:
    """Whether this process may create files in ``directory`` (False on read-only storage)."""
    return os.access(directory, os.W_OK | os.X_OK)


def connect_readonly(path: Path) -> sqlite3.Connection:
    """A read-only connection to the SQLite database at ``path`` that writes nothing there.

    Raises ``sqlite3.Error`` as :func:`sqlite3.connect` does (the caller names the file).
    """
    path = Path(path)
    uri = f"file:{quote(str(path.resolve()))}?mode=ro"
    wal = path.with_name(path.name + "-wal")
    shm = path.with_name(path.name + "-shm")
    if can_write(path.parent):
        if wal.exists() or not path.is_file():
            return sqlite3.connect(uri, uri=True, check_same_thread=False)
        conn = sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=rw", uri=True,
                               check_same_thread=False)
        conn.execute("PRAGMA query_only=1")
        return conn
    if not wal.exists():
        return sqlite3.connect(uri + "&immutable=1", uri=True, check_same_thread=False)
    if shm.exists():
        return sqlite3.connect(uri, uri=True, check_same_thread=False)
    return _copied(path, wal)


def _copied(path: Path, wal: Path) -> sqlite3.Connection:
    memory = sqlite3.connect(":memory:", check_same_thread=False)
    with tempfile.TemporaryDirectory(prefix="nsxt-upgrade-ro-") as scratch:
        copy = Path(scratch) / path.name
        shutil.copyfile(path, copy)
        shutil.copyfile(wal, copy.with_name(copy.name + "-wal"))
        source = sqlite3.connect(copy)
        try:
            source.backup(memory)
        finally:
            source.close()
    return memory
