"""How many times control moves between modules from ``start_run`` until the engine.

Issue 24 counted the moves between modules (and the returns) that starting a run
makes before the engine is reached.  This script runs ``nsxt-upgrade run`` of a
playbook (the lab's by default) in a fresh temporary state directory, in this
process, and traces with :func:`sys.setprofile` from the call of
``upgrade.shell.session.start_run`` until the first call into
``upgrade.core.engine``.  Only frames of the ``upgrade`` package count; the
standard library and third-party code are transparent.  A *move* is a call that
enters a different ``upgrade`` module than the caller's; a *return* is a return
that lands in a different module than the one returning.  The second count looks
at the state directory's modules only (:data:`SHELL`), the others transparent.

    python benchmarks/start_hops.py [PLAYBOOK] [--path]

``--path`` also prints the sequence of modules visited.
"""

from __future__ import annotations

import os
import sys
import tempfile
from contextlib import redirect_stdout
from pathlib import Path
from types import FrameType
from typing import Any

ENGINE = "upgrade.core.engine"
START = ("upgrade.shell.session", "start_run")
#: the modules that hold a state directory's life (issue 24's count): everything else
#: (planning, rendering, the core's model) is transparent in the second count
SHELL = ("upgrade.shell", "upgrade.readonly", "upgrade.sim.store")


class Hops:
    """Counts moves and returns between ``upgrade`` modules while tracing."""

    def __init__(self, prefixes: tuple[str, ...] = ("upgrade",)) -> None:
        self.prefixes = prefixes
        self.stack: list[str] = []
        self.active = False
        self.done = False
        self.moves = 0
        self.returns = 0
        self.path: list[str] = []

    def __call__(self, frame: FrameType, event: str, arg: Any) -> None:
        if self.done or event not in ("call", "return"):
            return
        module = frame.f_globals.get("__name__", "")
        if not module.startswith(self.prefixes) and not module.startswith(ENGINE):
            return
        if not self.active:
            if event == "call" and (module, frame.f_code.co_name) == START:
                self.active = True
                self.stack.append(module)
                self.path.append(module)
            return
        if event == "call":
            if module.startswith(ENGINE):
                self.moves += 1
                self.path.append(module)
                self.done = True
                return
            if self.stack and self.stack[-1] != module:
                self.moves += 1
                self.path.append(module)
            self.stack.append(module)
        else:
            if not self.stack:
                return
            self.stack.pop()
            if self.stack and self.stack[-1] != module:
                self.returns += 1
                self.path.append(f"<- {self.stack[-1]}")


def main(argv: list[str]) -> int:
    show_path = "--path" in argv
    args = [a for a in argv if a != "--path"]
    playbook = Path(args[0]) if args else Path("playbooks/lab-2.1-to-2.3.yaml")
    from upgrade.cli.main import cli

    hops = Hops()
    shell = Hops(SHELL)

    def both(frame: FrameType, event: str, arg: Any) -> None:
        hops(frame, event, arg)
        shell(frame, event, arg)

    with tempfile.TemporaryDirectory() as tmp, \
            Path(os.devnull).open("w", encoding="utf-8") as quiet, redirect_stdout(quiet):
        sys.setprofile(both)
        try:
            cli.main(["run", str(playbook), "--yes", "--state-dir", str(Path(tmp) / "s")],
                     standalone_mode=False)
        except SystemExit:
            pass
        finally:
            sys.setprofile(None)
    if show_path:
        print("\n".join(hops.path), file=sys.stderr)
        print("--- state-directory modules only:", file=sys.stderr)
        print("\n".join(shell.path), file=sys.stderr)
    print(f"start_run -> engine, every upgrade module: {hops.moves} moves between modules, "
          f"{hops.returns} returns (engine reached: {hops.done})")
    print(f"start_run -> engine, the shell's state-directory modules ({', '.join(SHELL)}; "
          f"others transparent): {shell.moves} moves, {shell.returns} returns")
    return 0 if hops.done and shell.done else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
