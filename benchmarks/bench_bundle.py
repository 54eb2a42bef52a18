"""Benchmark for issue 9 item 1: hashing a bundle, and the cache that spares `resume` from it.

Prints numbers; asserts nothing (machines here are shared and noisy).

    python benchmarks/bench_bundle.py              # a 1 GiB file of random-ish bytes
    python benchmarks/bench_bundle.py --mib 256    # quicker
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

from upgrade.shell.bundle import digest_of, remember


def main() -> None:
    """Write a file of ``--mib`` MiB, hash it cold and from the cache, print the timings."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mib", type=int, default=1024)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        bundle = root / "bundle.mub"
        block = os.urandom(1 << 20)
        with bundle.open("wb") as out:
            for _ in range(args.mib):
                out.write(block)
        state = root / "state"
        state.mkdir()
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        start = time.perf_counter()
        digest = digest_of(bundle, state)
        hashed = time.perf_counter() - start
        grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
        remember(state, digest)
        start = time.perf_counter()
        cached = digest_of(bundle, state)
        hit = time.perf_counter() - start
        assert not cached.hashed and cached.sha256 == digest.sha256
        print(f"hashed {args.mib} MiB in {hashed:.2f} s ({args.mib / hashed:.0f} MiB/s), "
              f"peak RSS grew {grown / 1024:.1f} MiB")
        print(f"cache hit (resume): {hit * 1000:.2f} ms")


if __name__ == "__main__":
    main()
