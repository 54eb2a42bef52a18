"""A site's engine inputs (plan, inventory, policy) as one compact JSON text, and back.

Temporal's JSON converter turns a 10,000-host inventory with 30 VMs per host into 13 MB and
takes some 20 s to turn it back into dataclasses; a workflow run starting from it would
outlive its task timeout.  Here the hosts are rows (``[id, cluster, [vm ids], [indexes of
the VMs powered off]]``), everything else the engine's tagged snapshot encoding, and a
text already read is kept by its SHA-256 (a continue-as-new or a replay of the same site
reads it once per process).  Pure: no I/O.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections import OrderedDict
from typing import Any

from upgrade.core.engine import snapshot as tagged
from upgrade.core.engine.timing import Policy
from upgrade.core.model import Host, Inventory, Vm
from upgrade.core.plan import Plan

#: decoded inputs kept, by digest
_KEEP = 8
_cache: OrderedDict[str, tuple[Plan, Inventory, Policy]] = OrderedDict()


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


def _remember(digest: str, decoded: tuple[Plan, Inventory, Policy]) -> None:
    _cache[digest] = decoded
    _cache.move_to_end(digest)
    while len(_cache) > _KEEP:
        _cache.popitem(last=False)
