"""Import circles inside a package: ``python scripts/import_circles.py upgrade.compat``.

Builds the import graph of ``upgrade`` with grimp (what import-linter reads: every
import, including ones under ``TYPE_CHECKING`` and inside functions), keeps the edges
between modules of the package named, and prints each strongly connected component
of more than one module with the import lines that close it.  Exit 1 if any.
"""

from __future__ import annotations

import sys

import grimp


def components(nodes: set[str], edges: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components of more than one node, sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            part = []
            while True:
                w = stack.pop()
                on.discard(w)
                part.append(w)
                if w == v:
                    break
            if len(part) > 1:
                found.append(sorted(part))

    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return sorted(found)


def main(package: str) -> int:
    graph = grimp.build_graph(package.split(".")[0], cache_dir=None)
    nodes = {m for m in graph.modules if m == package or m.startswith(package + ".")}
    edges = {m: graph.find_modules_directly_imported_by(m) & nodes for m in nodes}
    edge_count = sum(len(e) for e in edges.values())
    circles = components(nodes, edges)
    print(f"{package}: {len(nodes)} modules, {edge_count} imports between them, "
          f"{len(circles)} circle(s)")
    for part in circles:
        print("  circle: " + " <-> ".join(m.removeprefix(package + ".") for m in part))
        for a in part:
            for b in sorted(edges[a] & set(part)):
                for d in graph.get_import_details(importer=a, imported=b):
                    print(f"    {a}:{d['line_number']}: {d['line_contents']}")
    return 1 if circles else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "upgrade.compat"))
