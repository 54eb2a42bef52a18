"""Renderers of plans (and, later, of run status): JSON, rich text and Mermaid.

Renderers are pure: they turn plain data into a string or a JSON-ready dict
(the text renderer writes to the rich ``Console`` it is given) and never
compute anything the plan does not already say.
"""

from __future__ import annotations


def hms(seconds: float) -> str:
    """``seconds`` as ``h:mm:ss``, rounded (hours grow past 24: ``27:00:00``)."""
    seconds = max(0, round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"

