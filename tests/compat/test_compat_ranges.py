"""Unit tests of the vendor range notation parser (upgrade.compat.ranges)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from upgrade.compat.ranges import AtLeast, Between, Exact, Series, VersionSpec, parse_item
from upgrade.core.versions import Version


def v(text: str) -> Version:
    return Version.parse(text)


@pytest.mark.parametrize(
    ("text", "inside", "outside"),
    [
        ("2.1", ["2.1", "2.1.0.0", "2.1.5", "2.1.0.3"], ["2.2", "2.0.9", "3.1", "2.10"]),
        ("v2.2", ["2.2.0.0", "2.2.1"], ["2.3.0.0"]),
        ("2.1.x", ["2.1.0", "2.1.17"], ["2.2.0", "2.0.5"]),
        ("2.0.X", ["2.0.0", "2.0.5"], ["2.1.0"]),
        ("2.1 Advanced Edition", ["2.1.0.0", "2.1.2"], ["2.2.0.0"]),
        ("2.3.0.2", ["2.3.0.2"], ["2.3.0.0", "2.3.0", "2.3.1", "2.3.0.2.1"]),
        ("2.3.1", ["2.3.1", "2.3.1.0"], ["2.3.1.1", "2.3.0.2", "2.3"]),
        ("2.1.0 \u2013 2.1.6", ["2.1.0", "2.1.3", "2.1.6", "2.1"], ["2.1.7", "2.0.9", "2.2.0"]),
        ("2.0.0 - 2.0.5", ["2.0.0", "2.0.5"], ["2.0.6"]),
        ("2.4.0.1 \u2013 2.4.2", ["2.4.0.1", "2.4.1.0", "2.4.2"], ["2.4.0.0", "2.4.2.1", "2.3.1"]),
        ("2.2.2+", ["2.2.2", "2.2.3", "2.2.40"], ["2.2.1", "2.2", "2.3.0", "2.3.1"]),
        ("v2.3.1+", ["2.3.1", "2.3.9"], ["2.3.0", "2.4.0"]),
    ],
)
def test_every_notation_accepts_exactly_its_versions(
    text: str, inside: list[str], outside: list[str]
) -> None:
    """Each vendor notation accepts the versions it names and nothing else."""
    item = parse_item(text)
    assert item.text == text
    for version in inside:
        assert item.contains(v(version)), f"{text} should accept {version}"
    for version in outside:
        assert not item.contains(v(version)), f"{text} should refuse {version}"


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("2.1", Series),
        ("2.1.x", Series),
        ("2.1 Advanced Edition", Series),
        ("2.3.0.2", Exact),
        ("2.3.1", Exact),
        ("2.1.0 \u2013 2.1.6", Between),
        ("2.2.2+", AtLeast),
    ],
)
def test_notation_kinds(text: str, kind: type) -> None:
    """Two parts mean a series, three or more an exact release."""
    assert isinstance(parse_item(text), kind)


def test_edition_is_kept() -> None:
    """ "2.1 Advanced Edition" is the 2.1 series in the Advanced Edition."""
    item = parse_item("2.1 Advanced Edition")
    assert isinstance(item, Series)
    assert item.prefix == v("2.1")
    assert item.edition == "Advanced Edition"


def test_list_keeps_text_verbatim_and_describes_alternatives() -> None:
    """A list keeps the vendor's text and reads as alternatives in sentences."""
    spec = VersionSpec.parse("v2.2, v2.3.0.2, v2.3.1")
    assert str(spec) == "v2.2, v2.3.0.2, v2.3.1"
    assert spec.describe() == "2.2, 2.3.0.2 or 2.3.1"  # sentences drop the "v"; .text keeps it
    assert VersionSpec.parse("2.2, 2.3").describe() == "2.2 or 2.3"
    assert VersionSpec.parse("2.1").describe() == "2.1"
    assert spec.contains(v("2.2.1")) and spec.contains(v("2.3.0.2"))
    assert not spec.contains(v("2.3.0.0"))
    assert spec.matching(v("2.3.1.0")) == Exact("v2.3.1", v("2.3.1"))
    assert spec.matching(v("2.4")) is None


@pytest.mark.parametrize(
    "text",
    [
        "",
        ",",
        "2",
        "abc",
        "2.1.y",
        "2.1.0 \u2013",
        "2.1.6 \u2013 2.1.0",
        "2.1.0+ Edition",
        "2.1.0 Advanced Edition",
        "2.2.2++",
        "~2.2",
    ],
)
def test_malformed_notation_is_refused(text: str) -> None:
    """Anything that is not one of the vendor notations is a ValueError."""
    with pytest.raises(ValueError):
        VersionSpec.parse(text)


parts = st.lists(st.integers(0, 12), min_size=2, max_size=4).map(tuple)


@given(low=parts, probe=parts)
def test_at_least_is_bounded_by_its_series(low: tuple[int, ...], probe: tuple[int, ...]) -> None:
    """X.Y.Z+ accepts exactly the versions >= X.Y.Z that are still X.Y.x."""
    first, version = Version(low), Version(probe)
    item = AtLeast(f"{first}+", first)
    expected = version >= first and version.padded(2)[:2] == first.padded(2)[:2]
    assert item.contains(version) is expected


@given(a=parts, b=parts, probe=parts)
def test_range_is_inclusive_and_numeric(
    a: tuple[int, ...], b: tuple[int, ...], probe: tuple[int, ...]
) -> None:
    """An en-dash range A to B accepts exactly A <= v <= B, missing parts read as zero."""
    first, last = sorted([Version(a), Version(b)])
    item = parse_item(f"{first} \u2013 {last}")
    version = Version(probe)
    assert item.contains(version) is (first <= version <= last)
