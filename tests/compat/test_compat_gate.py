"""The compatibility gate that plan and run apply to a playbook's ``compatibility:``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from upgrade.compat import GateVerdict, UnknownVersionError, check, gate, load_matrix
from upgrade.compat.path import is_supported
from upgrade.core.model import Compatibility
from upgrade.core.versions import Version
from upgrade.inputs.playbook import load


def v(text: str) -> Version:
    return Version.parse(text)


def test_nothing_declared_is_ok_and_says_nothing_was_checked() -> None:
    """Without pks/opsman the gate lets the upgrade through, saying it checked nothing."""
    verdict = gate(Compatibility(), v("2.1.0.0"), v("2.3.0.0"))
    assert verdict.ok
    assert "not checked" in verdict.reason
    assert verdict.current_supported is None and verdict.target_supported is None
    assert verdict.source is None and verdict.suggested_path is None


def test_only_opsman_declared_is_not_checked() -> None:
    """Ops Manager alone cannot be checked: the matrix relates it to NSX-T through PKS."""
    verdict = gate(Compatibility(opsman=v("2.3.1")), v("2.1.0.0"), v("2.3.0.0"))
    assert verdict.ok and verdict.target_supported is None
    assert "not checked" in verdict.reason


def test_lab_upgrade_fixes_an_unsupported_current_combination(lab_playbook: Path) -> None:
    """The shipped lab (PKS 1.2.0 on NSX-T 2.1, to 2.3.0.0) plans cleanly."""
    loaded = load(lab_playbook)
    assert loaded.inventory is not None
    verdict = gate(
        loaded.playbook.compatibility, loaded.inventory.version, loaded.playbook.target_version
    )
    assert verdict.ok
    assert verdict.current_supported is False
    assert verdict.target_supported is True
    assert "not supported on the current NSX-T" in verdict.reason
    assert "unsupported too" in verdict.reason
    assert verdict.source and "v1.2" in verdict.source


def test_supported_on_both_sides_is_ok() -> None:
    """PKS 1.2.0 + Ops Manager 2.3.1 on 2.2 -> 2.3: supported before and after."""
    verdict = gate(Compatibility(v("1.2.0"), v("2.3.1")), v("2.2.0.0"), v("2.3.0.0"))
    assert verdict.ok and verdict.current_supported and verdict.target_supported
    assert "supported on both" in verdict.reason
    assert "(2.2 \u2192 2.3)" in verdict.reason


def test_unsupported_target_is_refused_with_a_path_keeping_nothing_impossible() -> None:
    """PKS 1.1.4 cannot run on NSX-T 2.3: refused, with a path through NSX-T 2.2."""
    verdict = gate(Compatibility(v("1.1.4"), v("2.1.0")), v("2.1.0.0"), v("2.3.0.0"))
    assert not verdict.ok
    assert verdict.target_supported is False and verdict.current_supported is True
    assert "PKS 1.1.4 needs NSX-T 2.1" in verdict.reason
    assert verdict.suggested_path is not None
    last = verdict.suggested_path[-1].state_after
    assert last.nsxt == v("2.3.0.0")
    assert any(s.state_after.nsxt.within(v("2.2")) for s in verdict.suggested_path)
    matrix = load_matrix()
    assert all(is_supported(matrix, s.state_after) for s in verdict.suggested_path)


def test_target_supported_but_no_direct_hop_is_refused() -> None:
    """PKS 1.4.1 runs on 2.4.1 (1.4.0 does not), but 2.1 -> 2.4 is not a direct NSX-T upgrade."""
    verdict = gate(Compatibility(v("1.4.1"), v("2.4.2")), v("2.1.0.0"), v("2.4.1.0"))
    assert not verdict.ok
    assert verdict.target_supported is True
    assert "not a supported direct upgrade" in verdict.reason
    assert verdict.suggested_path is not None
    # PKS and Ops Manager are kept: only NSX-T moves, through 2.3.1
    assert {s.product.value for s in verdict.suggested_path} == {"nsxt"}
    assert [str(s.new) for s in verdict.suggested_path] == ["2.3.1.0", "2.4.1.0"]


def test_downgrade_is_refused() -> None:
    """There is no NSX-T rollback, so no downgrade either."""
    verdict = gate(Compatibility(v("1.2.0"), v("2.3.1")), v("2.3.0.0"), v("2.2.0.0"))
    assert not verdict.ok
    assert "downgraded" in verdict.reason


def test_to_json_shape() -> None:
    """The plan JSON's "compatibility" object: the verdict's fields plus the versions."""
    verdict = gate(Compatibility(v("1.1.4"), v("2.1.0")), v("2.1.0.0"), v("2.3.0.0"))
    doc = verdict.to_json()
    assert set(doc) >= {
        "ok",
        "reason",
        "current_supported",
        "target_supported",
        "source",
        "suggested_path",
    }
    assert doc["ok"] is False
    steps = doc["suggested_path"]
    assert isinstance(steps, list) and steps
    assert set(steps[0]) >= {"product", "from", "to", "state_after"}
    assert set(steps[0]["state_after"]) == {"pks", "nsxt", "opsman"}
    json.dumps(doc)  # plain data all the way down
    ok = gate(Compatibility(), v("2.1.0.0"), v("2.3.0.0")).to_json()
    assert ok["suggested_path"] is None and ok["current_supported"] is None


def test_unknown_declared_version_is_an_input_error() -> None:
    """An unknown PKS in the playbook is bad input (exit 2), listing the nearest ones."""
    with pytest.raises(UnknownVersionError) as info:
        gate(Compatibility(v("9.9")), v("2.1.0.0"), v("2.3.0.0"))
    assert info.value.exit_code == 2
    assert "nearest known" in str(info.value)


def test_verdict_is_frozen() -> None:
    """Verdicts are plain frozen data."""
    verdict = gate(Compatibility(), v("2.1.0.0"), v("2.3.0.0"))
    assert isinstance(verdict, GateVerdict)
    with pytest.raises(AttributeError):
        verdict.ok = False  # type: ignore[misc]


def test_gate_agrees_with_check() -> None:
    """The gate's target verdict is exactly compat check's."""
    for pks, nsxt in [("1.2.0", "2.3.0.0"), ("1.1.6", "2.2.0.0"), ("1.3.0", "2.3.0.2")]:
        verdict = gate(Compatibility(v(pks)), v("2.1.0.0"), v(nsxt))
        assert verdict.target_supported == check(v(pks), v(nsxt)).supported
