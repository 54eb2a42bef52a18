"""The flow data (``upgrade/compat/flows.yaml``): every hop the compatibility data allows
has a flow, every fact is cited to a known vendor document, and a broken data file is
``FILE:LINE:COL: what is wrong``."""

from __future__ import annotations

from pathlib import Path

import pytest

from upgrade.compat.flows import flow_for, load_flows, no_flow_reason, read_flows
from upgrade.core.model import UnitKind
from upgrade.core.plan import Phase
from upgrade.core.versions import Version
from upgrade.errors import FileError
from upgrade.inputs.yamlio import load_yaml

DATA = Path(__file__).resolve().parents[2] / "upgrade" / "compat" / "flows.yaml"


def v(text: str) -> Version:
    return Version.parse(text)


@pytest.mark.parametrize(("source", "target", "flow", "order"), [
    ("2.1.0.0", "2.2.0.0", "2.1-to-2.2", "hosts edges controllers manager"),
    ("2.1.0.0", "2.3.0.0", "2.x-to-2.3", "hosts edges controllers manager"),
    ("2.2.0.0", "2.3.1.0", "2.x-to-2.3", "hosts edges controllers manager"),
    ("2.3.0.0", "2.3.1.0", "2.3-patch", "hosts edges controllers manager"),
    ("2.3.1.0", "2.4.1.0", "2.3-to-2.4", "hosts edges manager"),
    ("2.3.1.0", "2.4.0.1", "2.3-to-2.4", "hosts edges manager"),
    ("2.4.0.1", "2.4.1.0", "2.3-to-2.4", "hosts edges manager"),  # within the 2.4 series
    ("2.4.1.0", "2.5.0.0", "2.4-to-2.5", "edges hosts manager"),
    ("2.5.0.0", "2.5.0.0", "2.4-to-2.5", "edges hosts manager"),  # already there
])
def test_each_hop_of_the_path_has_its_flow(source: str, target: str, flow: str,
                                           order: str) -> None:
    found = flow_for(v(source), v(target))
    assert found is not None
    assert found.id == flow
    assert " ".join(p.value for p in found.order) == order


@pytest.mark.parametrize(("source", "target"), [
    ("2.3.1.0", "2.6.0.0"), ("2.5.0.0", "3.0.0.0"), ("2.1.0.0", "2.4.1.0"),
    ("2.3.0.0", "2.4.1.0"),  # the vendor's 2.4 hop starts at 2.3.1
    ("2.3.1.0", "2.2.0.0"),  # no downgrade
])
def test_a_hop_without_a_flow_gets_none_and_a_reason_naming_the_known_flows(
        source: str, target: str) -> None:
    assert flow_for(v(source), v(target)) is None
    reason = no_flow_reason(v(source), v(target))
    for entry in load_flows().flows:
        assert entry.id in reason


def test_every_fact_cites_known_documents() -> None:
    data = load_flows()
    for entry in data.flows:
        assert entry.source.documented, entry.source.text
        for phase in entry.phases:
            assert phase.source.documented, (entry.id, phase.name, phase.source.text)
            assert phase.api_source.documented, (entry.id, phase.name)
            assert phase.api and phase.parallel
            assert phase.confirmed or phase.note


def test_from_2_4_the_controllers_are_merged_into_the_manager() -> None:
    data = load_flows()
    assert data.merges(v("2.4.1.0"), UnitKind.CONTROLLER)
    assert data.merges(v("2.5.0.0"), UnitKind.CONTROLLER)
    assert not data.merges(v("2.3.1.0"), UnitKind.CONTROLLER)
    flow = flow_for(v("2.3.1.0"), v("2.4.1.0"))
    assert flow is not None
    assert Phase.CONTROLLERS not in flow.order
    assert "merged" in flow.merged_note
    assert "In the NSX-T Data Center 2.4 release, the NSX Controller is merged" in \
        flow.phases[-1].source


def _broken(tmp_path: Path, old: str, new: str) -> Path:
    text = DATA.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "flows.yaml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


@pytest.mark.parametrize(("old", "new", "message"), [
    ("order: [hosts, edges, manager-merging-controllers]",
     "order: [hosts, manager-merging-controllers, edges]", "upgraded last"),
    ("order: [hosts, edges, manager-merging-controllers]",
     "order: [hosts, edges, hosts, manager-merging-controllers]", "in the order twice"),
    ("order: [hosts, edges, manager-merging-controllers]",
     "order: [hosts, edges, controllers, manager-merging-controllers]",
     "merged, so the order cannot"),
    ("order: [edges, hosts, manager-merging-controllers]",
     "order: [edgez, hosts, manager-merging-controllers]", "no entry of phases"),
    ('    unit: host\n', '    unit: edge\n', "upgrades host units, not edge"),
    ('    confirmed: false\n    note: "the 5 x 5', '    confirmed: false\n    nota: "the 5 x 5',
     "unknown key"),
    ('  - id: "2.3-patch"', '  - id: "2.1-to-2.2"', "listed twice"),
])
def test_a_broken_flow_file_names_file_line_and_column(tmp_path: Path, old: str, new: str,
                                                        message: str) -> None:
    path = _broken(tmp_path, old, new)
    with pytest.raises(FileError) as caught:
        read_flows(load_yaml(path))
    assert str(caught.value).startswith(f"{path}:")
    assert caught.value.line > 0
    assert message in str(caught.value)
