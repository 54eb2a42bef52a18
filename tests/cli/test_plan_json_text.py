"""``plan --format json``'s writer gives exactly ``json.dumps(value, indent=2, default=str)``."""

from __future__ import annotations

import enum
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from upgrade.render.jsontext import dumps_indented


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
