"""``plan --format json``'s writers give exactly ``json.dumps(value, indent=2, default=str)``:
the whole text at once, or streamed in pieces."""

from __future__ import annotations

import enum
import json
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from upgrade.prepare.planning import prepare
from upgrade.render import jsontext
from upgrade.render.jsontext import Streamed, dumps_indented, indented_text, write_indented
from upgrade.render.plan_json import plan_to_json, write_plan_json

ROOT = Path(__file__).resolve().parents[2]


class _Kind(enum.StrEnum):
    HOST = "host"


class _Count(enum.IntEnum):
    ONE = 1


_SCALARS = (st.none() | st.booleans() | st.integers() | st.floats() | st.text()
            | st.sampled_from([_Kind.HOST, _Count.ONE]))
_KEYS = st.text() | st.integers() | st.floats() | st.booleans() | st.none()
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.tuples(inner, inner)
    | st.dictionaries(_KEYS, inner, max_size=4),
    max_leaves=30,
)


@given(_VALUES)
def test_same_text_as_the_standard_library(value: object) -> None:
    assert dumps_indented(value, default=str) == json.dumps(value, indent=2, default=str)


def test_default_and_its_absence() -> None:
    value = {"path": Path("/x"), "nested": [{"p": Path("y")}], "k": _Kind.HOST}
    assert dumps_indented(value, default=str) == json.dumps(value, indent=2, default=str)
    with pytest.raises(TypeError):
        dumps_indented({"p": Path("/x")})
    with pytest.raises(TypeError):
        dumps_indented({(1, 2): 3})


@given(_VALUES, st.sampled_from([1, 3, 4096]))
def test_the_streaming_writer_writes_the_same_text(value: object, flush_at: int) -> None:
    """Written in pieces (however small), the text is still the standard library's."""
    pieces: list[str] = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(jsontext, "_FLUSH_AT", flush_at)
        write_indented(value, pieces.append, default=str)
    assert "".join(pieces) == json.dumps(value, indent=2, default=str)


@given(st.lists(st.text() | st.just(_Kind.HOST), min_size=1, max_size=6), st.integers(0, 2))
def test_a_list_of_strings_written_at_once_is_the_same_text(texts: list[str], depth: int
                                                            ) -> None:
    """A list holding strings only (a plan's unit ids) is joined in one go; with a StrEnum
    among them, entry by entry: the same text either way, at any depth."""
    value: object = texts
    for _ in range(depth):
        value = {"units": value, "n": [value]}
    pieces: list[str] = []
    write_indented(value, pieces.append, default=str)
    assert "".join(pieces) == json.dumps(value, indent=2, default=str)


@given(st.lists(_VALUES, max_size=5), st.booleans())
def test_a_streamed_list_reads_as_its_entries(entries: list[object], render: bool) -> None:
    """A Streamed list (a generator: iterated once, never held) is written as a list."""
    streamed = Streamed((e for e in entries),
                        (lambda batch, n: [indented_text(e, n, str) for e in batch])
                        if render else None)
    pieces: list[str] = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(jsontext, "_FLUSH_AT", 2)  # several batches
        write_indented({"a": [streamed], "b": streamed if not entries else 1}, pieces.append,
                       default=str)
    assert "".join(pieces) == json.dumps({"a": [entries], "b": [] if not entries else 1},
                                         indent=2, default=str)


def test_the_plan_written_in_pieces_is_the_plan_document() -> None:
    """`plan --format json`'s writer and the plan's dict give the same bytes, bars whose
    fields are not the usual types included (they take the general writer)."""
    plan = prepare(ROOT / "playbooks" / "lab-2.1-to-2.3.yaml").plan
    odd = replace(plan.schedule[0], start=1.5)  # type: ignore[arg-type]
    for each in (plan, replace(plan, schedule=(odd, *plan.schedule[1:]))):
        pieces: list[str] = []
        write_plan_json(each, pieces.append)
        assert len(each.schedule) > 10
        assert "".join(pieces) == json.dumps(plan_to_json(each), indent=2, default=str)
