"""Bundle integrity (DESIGN section 7): a ``path`` bundle is hashed before anything is uploaded.

The playbook's ``bundle.sha256`` is checked against a streamed SHA-256 of the
file (read in chunks: a bundle is several GB).  The digest is cached in the
state directory keyed by the file's resolved path, size and modification time
(nanoseconds), so ``resume`` does not read 7 GB again; a file that changed in
any of those is hashed again.  Reading the cache never writes, so a mismatch
found before a run starts leaves nothing behind.

This is shell code (it reads files); the pure core never sees it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from upgrade.core.model import Playbook
from upgrade.errors import FileError, InputError

#: the cache file in the state directory
CACHE_FILE = "bundle-sha256.json"
#: bytes read at a time: large enough to be fast, small enough to keep memory flat
CHUNK = 1 << 20

#: told how many bytes have been read so far, and the total
Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class Digest:
    """The SHA-256 of one bundle file, and what it was computed for."""

    path: str
    size: int
    mtime_ns: int
    sha256: str
    #: True when the file was read now, False when the cache answered
    hashed: bool = True

    def key(self) -> dict[str, object]:
        """What the cache entry must match."""
        return {"path": self.path, "size": self.size, "mtime_ns": self.mtime_ns}


def bundle_path(playbook: Playbook) -> Path | None:
    """The local bundle file the playbook names (paths are relative to the playbook)."""
    if not playbook.bundle.path:
        return None
    return Path(playbook.path).parent / playbook.bundle.path


def hash_file(path: Path, progress: Progress | None = None) -> str:
    """The SHA-256 of ``path``, read in :data:`CHUNK` pieces; ``progress`` after each."""
    digest = hashlib.sha256()
    total = path.stat().st_size
    done = 0
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK):
            digest.update(chunk)
            done += len(chunk)
            if progress is not None:
                progress(done, total)
    return digest.hexdigest()


def digest_of(path: Path, state_dir: Path | None, progress: Progress | None = None) -> Digest:
    """The file's digest: from ``state_dir``'s cache when path, size and mtime match, or read."""
    resolved = path.resolve()
    try:
        stat = resolved.stat()
        key = Digest(str(resolved), stat.st_size, stat.st_mtime_ns, "")
        cached = _cached(state_dir, key)
        if cached is not None:
            return cached
        return Digest(key.path, key.size, key.mtime_ns, hash_file(resolved, progress))
    except OSError as exc:
        raise InputError(f"cannot read the upgrade bundle {path}: {exc.strerror or exc}") \
            from None


def _cached(state_dir: Path | None, key: Digest) -> Digest | None:
    if state_dir is None:
        return None
    try:
        entry = json.loads((state_dir / CACHE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # no cache yet, or one we cannot read: hash again
    if not isinstance(entry, dict) or any(entry.get(k) != v for k, v in key.key().items()):
        return None
    sha = entry.get("sha256")
    if not isinstance(sha, str) or len(sha) != 64:
        return None
    return Digest(key.path, key.size, key.mtime_ns, sha, hashed=False)


def remember(state_dir: Path, digest: Digest) -> None:
    """Write ``digest`` to ``state_dir``'s cache (a temporary file, then a rename)."""
    entry = {**digest.key(), "sha256": digest.sha256}
    tmp = state_dir / (CACHE_FILE + ".tmp")
    tmp.write_text(json.dumps(entry), encoding="utf-8")
    tmp.replace(state_dir / CACHE_FILE)


def verify_bundle(playbook: Playbook, state_dir: Path | None,
                  progress: Progress | None = None) -> Digest | None:
    """Check the playbook's ``path`` bundle against its ``sha256``; None when there is
    nothing to check (a ``url`` bundle, or no ``sha256``: the plan warns about that).

    A mismatch raises :class:`FileError` (exit 2) at the playbook's ``sha256`` line,
    naming both digests.  Writes nothing.
    """
    path = bundle_path(playbook)
    expected = playbook.bundle.sha256
    if path is None or expected is None:
        return None
    digest = digest_of(path, state_dir, progress)
    if digest.sha256 != expected.lower():
        line, column = playbook.bundle.sha256_at or (1, 1)
        raise FileError(
            playbook.path, line, column,
            f"bundle sha256 mismatch: expected {expected.lower()}, got {digest.sha256} "
            f"for {path} (is it the bundle you meant, completely downloaded? if the file is "
            "right, put its sha256 in the playbook)",
        )
    return digest
