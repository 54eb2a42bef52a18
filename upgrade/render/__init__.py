"""Renderers of plans (and, later, of run status): JSON, rich text and Mermaid.

Renderers are pure: they turn plain data into a string or a JSON-ready dict
(the text renderer writes to the rich ``Console`` it is given) and never
compute anything the plan does not already say.
"""

from __future__ import annotations

import re

#: what may not reach a terminal as it is: C0 and C1 control characters (ESC starts
#: terminal escapes, CSI is the 8-bit one) and the bidirectional overrides and isolates
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def hms(seconds: float) -> str:
    """``seconds`` as ``h:mm:ss``, rounded (hours grow past 24: ``27:00:00``)."""
    seconds = max(0, round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"



def printable(text: str, newlines: bool = False) -> str:
    """``text`` with control characters written as visible escapes (``\\x1b``, ``\\n``,
    ``\\u202e``), so that a name a manager reports cannot move the cursor, recolour or
    clear the terminal, or reverse what follows it.  ``newlines=True`` keeps line breaks
    (for messages made of several lines).

    Every text output goes through it: tables, progress lines, status, error
    messages.  JSON outputs need nothing (``json.dumps`` escapes these itself);
    rich output also needs markup escaped, or a :class:`rich.text.Text`.
    """
    def visible(match: re.Match[str]) -> str:
        char = match.group()
        if newlines and char == "\n":
            return char
        return char.encode("unicode_escape").decode("ascii")

    return _UNPRINTABLE.sub(visible, text)
