"""Record the golden histories again: ``python -m tests.histories.record [NAME ...]``.

Each scenario of :data:`tests.histories.golden.SCENARIOS` (all, or those named) is run
through the CLI on a virtual clock into a temporary state directory, and its inputs,
``history.json`` and ``journal.jsonl`` are written to ``tests/histories/NAME/``.  Recording
is deterministic: without a change to the engine's decisions (or the journal's format) the
files come out byte for byte the same, so ``git diff tests/histories`` shows exactly what a
change did to each history.
"""

from __future__ import annotations

import sys

from tests.histories.golden import HERE, JOURNAL, SCENARIOS, record


def main(names: list[str]) -> int:
    """Record the named scenarios (all when none is named); 2 for an unknown name."""
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        print(f"no such history: {', '.join(unknown)}; known: {', '.join(SCENARIOS)}",
              file=sys.stderr)
        return 2
    for name in names or list(SCENARIOS):
        path = HERE / name / JOURNAL
        before = path.read_bytes() if path.is_file() else None
        where = record(name, SCENARIOS[name])
        after = (where / JOURNAL).read_bytes()
        verdict = "unchanged" if before == after else "new" if before is None else "CHANGED"
        print(f"{name}: {len(after.splitlines())} records, {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
