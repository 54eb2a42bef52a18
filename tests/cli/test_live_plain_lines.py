"""The live display's plain lines are the bytes rich's ``console.print`` writes."""

from __future__ import annotations

import io

from hypothesis import given
from hypothesis import strategies as st

from upgrade.render.live import PipeSafeConsole, write_plain

_PIECES = st.sampled_from([*"ab :[]/\\-_09\t\né ", ":smile:", ":cd:", ":warning:",
                           "[bold]", "[0:01:00] "])
_TEXT = st.lists(_PIECES, max_size=12).map("".join) | st.text()


def _printed(text: str, fast: bool) -> str:
    out = io.StringIO()
    console = PipeSafeConsole(file=out)
    if not (fast and write_plain(console, text)):
        console.print(text, markup=False, highlight=False, soft_wrap=True)
    return out.getvalue()


@given(st.lists(_TEXT, max_size=3).map("".join))
def test_the_same_bytes_as_rich(text: str) -> None:
    assert _printed(text, fast=True) == _printed(text, fast=False)


def test_a_quiet_console_writes_nothing() -> None:
    out = io.StringIO()
    console = PipeSafeConsole(file=out, quiet=True)
    assert write_plain(console, "[0:00:00] hosts started")
    assert out.getvalue() == ""
