"""The flow data: the Upgrade Coordinator's order per NSX-T hop, read from ``flows.yaml``.

Every hop the compatibility data allows (2.1 -> 2.2, 2.1/2.2 -> 2.3, 2.3 -> 2.3.x,
2.3.1 -> 2.4.x, 2.4 -> 2.5.x) has a flow: its unit phases in order, what runs at once
and which API calls, each fact cited like the matrix (``DOC LOCATION``).  :func:`flow_for`
picks the flow of a hop; a hop the data holds none for gets no flow, and planning refuses
it naming the known ones (:func:`no_flow_reason`), never borrowing another release's order.
A problem in the packaged file is ``FILE:LINE:COL: what is wrong`` like any input.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources

from upgrade.compat.ranges import VersionSpec
from upgrade.compat.sources import Citation, Document, parse_citation
from upgrade.core.model import UnitKind
from upgrade.core.plan import UNIT_PHASES, Flow, FlowPhase, Phase
from upgrade.core.versions import Version
from upgrade.inputs.yamlio import MapReader, Node, as_str, entries, load_yaml

_TOP = ("schema", "documents", "phases", "flows")
_DOC = ("title", "repo", "branch", "commit", "file", "url")
_PHASE = ("phase", "unit", "component", "parallel", "source", "confirmed", "note", "api",
          "api_source")
_FLOW = ("id", "title", "from", "to", "order", "source", "order_confirmed", "order_note",
         "merged", "merged_note")
SCHEMA = 1


@dataclass(frozen=True, slots=True)
class PhaseFacts:
    """One unit phase as a release's coordinator runs it, with its citations."""

    name: str
    phase: Phase
    unit: UnitKind
    #: the coordinator's component type: HOST, EDGE, CCP or MP
    component: str
    parallel: str
    source: Citation
    api: tuple[str, ...]
    api_source: Citation
    confirmed: bool = True
    note: str = ""


@dataclass(frozen=True, slots=True)
class FlowEntry:
    """One flow of the data: the hop it covers and its phases, with citations."""

    id: str
    title: str
    sources: VersionSpec
    targets: VersionSpec
    phases: tuple[PhaseFacts, ...]
    source: Citation
    order_confirmed: bool = True
    order_note: str = ""
    merged: tuple[UnitKind, ...] = ()
    merged_note: str = ""

    def covers(self, source: Version, target: Version) -> bool:
        """True for a hop from ``source`` to ``target`` this flow describes."""
        return self.targets.contains(target) and self.sources.contains(source)

    def covers_within(self, source: Version, target: Version) -> bool:
        """True for a hop within this flow's target series (a patch, or a site already
        there): the target release's coordinator runs it in its own order."""
        return self.targets.contains(target) and self.targets.contains(source) \
            and not target < source

    def components(self) -> tuple[str, ...]:
        """The coordinator's component types in the flow's order (``HOST, EDGE, MP``)."""
        return tuple(p.component for p in self.phases)

    def flow(self) -> Flow:
        """The plain flow the plan and the engine use."""
        phases = tuple(FlowPhase(p.phase, p.unit, p.parallel, p.api, _facts_source(p))
                       for p in self.phases)
        source = self.source.render()
        if not self.order_confirmed:
            source += f" (order partly unconfirmed: {self.order_note})"
        return Flow(self.id, self.title, self.sources.text, self.targets.text, phases,
                    source, self.merged, self.merged_note)

    def describe(self) -> str:
        """``2.3-to-2.4 (NSX-T 2.3.1 -> 2.4.x: hosts, edges, manager)``."""
        order = ", ".join(p.phase.value for p in self.phases)
        return f"{self.id} ({self.title}: {order})"


def _facts_source(p: PhaseFacts) -> str:
    text = f"{p.source.render()}; API: {p.api_source.render()}"
    return text if p.confirmed else f"{text} (unconfirmed: {p.note})"


@dataclass(frozen=True, slots=True)
class FlowData:
    """Every flow of the data, in the data's order."""

    flows: tuple[FlowEntry, ...]
    documents: Mapping[str, Document]

    def entry_for(self, source: Version, target: Version) -> FlowEntry | None:
        """The flow of the hop ``source`` -> ``target``, if the data holds one."""
        return next((f for f in self.flows if f.covers(source, target)),
                    next((f for f in self.flows if f.covers_within(source, target)), None))

    def merges(self, target: Version, kind: UnitKind) -> bool:
        """True when a release ``target`` has no ``kind`` units: they were merged into
        another (NSX-T 2.4 and later: the controllers into the manager)."""
        return any(f.targets.contains(target) and kind in f.merged for f in self.flows)

    def known(self) -> str:
        """The known flows, for a refusal: ``2.1-to-2.2 (2.1 -> 2.2: ...), ...``."""
        return "; ".join(f.describe() for f in self.flows)


@cache
def load_flows() -> FlowData:
    """The packaged flow data, read and validated once per process."""
    ref = resources.files("upgrade.compat").joinpath("flows.yaml")
    with resources.as_file(ref) as path:
        return read_flows(load_yaml(path))


def flow_for(source: Version, target: Version) -> Flow | None:
    """The flow of the hop ``source`` -> ``target`` (None: the data holds none)."""
    entry = load_flows().entry_for(source, target)
    return entry.flow() if entry is not None else None


def no_flow_reason(source: Version, target: Version) -> str:
    """Why a hop without a flow is refused, naming the known flows."""
    return (f"no upgrade flow for NSX-T {source} -> {target}: the flow data "
            "(upgrade/compat/flows.yaml) holds no Upgrade Coordinator order for that hop, "
            "and nsxt-upgrade never runs one release's upgrade in another's order; "
            f"known flows: {load_flows().known()}")


def read_flows(root_node: Node) -> FlowData:
    """Validate the flow data's nodes (``FILE:LINE:COL`` errors)."""
    root = MapReader(root_node, _TOP, "the flow data")
    schema = root.int("schema", SCHEMA)
    if schema != SCHEMA:
        raise root.at("schema").error(f"flow data schema {schema}, this version reads {SCHEMA}")
    documents: dict[str, Document] = {}
    docs = root.get("documents")
    if docs is not None and isinstance(docs.value, dict):
        for name, value in docs.value.items():
            d = MapReader(value, _DOC, f"document {name}")
            documents[name] = Document(name, d.req_str("title"), d.str("repo"),
                                       d.str("branch"), d.str("commit"), d.str("file"),
                                       d.str("url"))
    phases_node = root.require("phases")
    if not isinstance(phases_node.value, dict):
        raise phases_node.where.error("phases must be a mapping of names to phase facts")
    facts = {name: _phase(name, MapReader(node, _PHASE, f"phase {name}"), documents)
             for name, node in phases_node.value.items()}
    flows: list[FlowEntry] = []
    for f in entries(root.list("flows", required=True), _FLOW, "a flow"):
        flow = _flow(f, facts, documents)
        if any(old.id == flow.id for old in flows):
            raise f.at("id").error(f"flow {flow.id!r} is listed twice")
        flows.append(flow)
    return FlowData(tuple(flows), documents)


def _cite(node: Node, what: str, documents: Mapping[str, Document]) -> Citation:
    try:
        return parse_citation(as_str(node, what), documents)
    except ValueError as exc:
        raise node.where.error(f"{what}: {exc}") from None


def _spec(node: Node, what: str) -> VersionSpec:
    try:
        return VersionSpec.parse(as_str(node, what))
    except ValueError as exc:
        raise node.where.error(f"{what}: {exc}") from None


def _phase(name: str, r: MapReader, documents: Mapping[str, Document]) -> PhaseFacts:
    phase = Phase(_choice(r, "phase", tuple(p.value for p in UNIT_PHASES)))
    unit = UnitKind(_choice(r, "unit", tuple(k.value for k in UnitKind)))
    if UNIT_PHASES[phase] is not unit:
        raise r.at("unit").error(f"phase {phase.value} upgrades {UNIT_PHASES[phase].value} "
                                 f"units, not {unit.value}")
    confirmed = r.bool("confirmed", True)
    note = r.str("note") or ""
    if not confirmed and not note:
        raise r.at("confirmed").error("an unconfirmed fact needs a note: what it rests on")
    return PhaseFacts(
        name, phase, unit, _choice(r, "component", ("HOST", "EDGE", "CCP", "MP")),
        r.req_str("parallel"), _cite(r.require("source"), "source", documents),
        tuple(as_str(item, "api") for item in r.list("api", required=True)),
        _cite(r.require("api_source"), "api_source", documents), confirmed, note,
    )


def _choice(r: MapReader, key: str, choices: tuple[str, ...]) -> str:
    r.require(key)
    return r.choice(key, choices, "")


def _flow(f: MapReader, facts: Mapping[str, PhaseFacts],
          documents: Mapping[str, Document]) -> FlowEntry:
    order: list[PhaseFacts] = []
    for item in f.list("order", required=True):
        name = as_str(item, "order")
        if name not in facts:
            raise item.where.error(f"order names {name!r}, which is no entry of phases "
                                   f"(known: {', '.join(facts)})")
        if any(p.phase is facts[name].phase for p in order):
            raise item.where.error(f"phase {facts[name].phase.value} is in the order twice")
        order.append(facts[name])
    if not order or order[-1].phase is not Phase.MANAGER:
        raise f.at("order").error("the management plane (manager) is upgraded last in "
                                  "every NSX-T release: end the order with it")
    confirmed = f.bool("order_confirmed", True)
    note = f.str("order_note") or ""
    if not confirmed and not note:
        raise f.at("order_confirmed").error("an unconfirmed order needs order_note")
    merged = tuple(UnitKind(as_str(item, "merged")) for item in
                   (f.list("merged") if f.has("merged") else []))
    for kind in merged:
        if any(p.unit is kind for p in order):
            raise f.at("merged").error(f"{kind.value} units are merged, so the order cannot "
                                       "have a phase for them")
    return FlowEntry(
        f.id("id"), f.req_str("title"), _spec(f.require("from"), "from"),
        _spec(f.require("to"), "to"), tuple(order),
        _cite(f.require("source"), "source", documents), confirmed, note, merged,
        f.str("merged_note") or "",
    )
