"""A site's engine inputs (plan, inventory, policy) as one compact JSON text, and back.

Temporal's JSON converter turns a 10,000-host inventory with 30 VMs per host into 13 MB and
takes some 20 s to turn it back into dataclasses; a workflow run starting from it would
outlive its task timeout.  Here the hosts are rows (``[id, cluster, [vm ids], [indexes of
the VMs powered off]]``), everything else the engine's tagged snapshot encoding, and a
text already read is kept by its SHA-256 (a continue-as-new or a replay of the same site
reads it once per process), with a fresh engine over it (:func:`pristine`: the baseline a
snapshot is taken against, made once instead of at every continue-as-new).  The payload
codec decodes a site's input on the worker's event loop, before the workflow code runs
(:func:`warm`), so a worker that just started does not spend a workflow activation on it
(Temporal's deadlock detector allows an activation 2 s).  A pure function of the text: a
replay reads the same inputs whether they were kept or not.  Pure: no I/O.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections import OrderedDict
from typing import Any

from upgrade.core.engine import snapshot as tagged
from upgrade.core.engine.core import Engine
from upgrade.core.engine.timing import Policy
from upgrade.core.model import Host, Inventory, Vm
from upgrade.core.plan import Plan

#: decoded inputs kept, by digest
_KEEP = 8
_cache: OrderedDict[str, tuple[Plan, Inventory, Policy]] = OrderedDict()
#: a fresh engine over the inputs of each digest kept (never fed an event)
_fresh: dict[str, Engine] = {}


def pack(plan: Plan, inventory: Inventory, policy: Policy) -> tuple[str, str]:
    """The inputs as compact JSON text, and its SHA-256."""
    hosts = [[h.id, h.cluster, [v.id for v in h.vms],
              [i for i, v in enumerate(h.vms) if not v.powered_on]] for h in inventory.hosts]
    doc = {"plan": tagged.enc(plan),
           "inventory": tagged.enc(dataclasses.replace(inventory, hosts=())),
           "hosts": hosts, "policy": tagged.enc(policy)}
    text = json.dumps(doc, separators=(",", ":"))
    digest = hashlib.sha256(text.encode()).hexdigest()
    _remember(digest, (plan, inventory, policy))
    return text, digest


def unpack(text: str, digest: str) -> tuple[Plan, Inventory, Policy]:
    """The inputs :func:`pack` made ``text`` from (``digest`` its SHA-256)."""
    kept = _cache.get(digest)
    if kept is not None:
        _cache.move_to_end(digest)
        return kept
    doc: dict[str, Any] = json.loads(text)
    plan, rest, policy = (tagged.dec(doc["plan"]), tagged.dec(doc["inventory"]),
                          tagged.dec(doc["policy"]))
    hosts = []
    for ident, cluster, vms, off in doc["hosts"]:
        down = set(off)
        hosts.append(Host(ident, cluster, tuple(
            Vm(v, i not in down) if down else Vm(v) for i, v in enumerate(vms))))
    inventory = dataclasses.replace(rest, hosts=tuple(hosts))
    if not isinstance(plan, Plan) or not isinstance(inventory, Inventory) or \
            not isinstance(policy, Policy):
        raise ValueError("not a site's engine inputs")
    decoded = (plan, inventory, policy)
    _remember(digest, decoded)
    return decoded


def pristine(text: str, digest: str) -> Engine:
    """A fresh engine over the inputs of ``text`` (made once per digest kept): a baseline
    for snapshots, which only read it; never feed it an event."""
    engine = _fresh.get(digest)
    if engine is None:
        engine = _fresh[digest] = Engine(*unpack(text, digest))
    return engine


def warm(text: str, digest: str) -> None:
    """Decode ``text`` and make its fresh engine now, so that a workflow asking later finds
    both kept."""
    pristine(text, digest)


def _remember(digest: str, decoded: tuple[Plan, Inventory, Policy]) -> None:
    _cache[digest] = decoded
    _cache.move_to_end(digest)
    while len(_cache) > _KEEP:
        gone, _ = _cache.popitem(last=False)
        _fresh.pop(gone, None)
