"""The shared compact JSON encoder writes exactly what ``json.dumps`` writes."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from upgrade.jsonenc import compact_encoder

VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(VALUES, st.booleans())
def test_same_text_as_json_dumps(value: Any, sort_keys: bool) -> None:
    encode = compact_encoder(sort_keys=sort_keys)
    assert encode(value) == json.dumps(value, separators=(",", ":"), sort_keys=sort_keys)


def test_nan_is_refused_only_when_asked() -> None:
    assert compact_encoder()([math.nan]) == "[NaN]"
    with pytest.raises(ValueError):
        compact_encoder(allow_nan=False)([math.nan])
