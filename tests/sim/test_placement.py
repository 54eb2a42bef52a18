"""The DRS placement index (:mod:`upgrade.sim.placement`) against a plain scan."""

from __future__ import annotations

import random

import pytest

from upgrade.core.model import Cluster, Drs
from upgrade.errors import TransientAdapterError
from upgrade.sim.placement import Placement
from upgrade.sim.records import VmRecord


def _scan(placement: Placement, cluster: Cluster, host: str,
          busy: set[str]) -> list[tuple[str, str]]:
    """What DRS picks, the slow way: every host of the cluster looked at for every VM."""
    running = placement.running(host)
    targets = [h for h in cluster.hosts if h != host and h not in busy]
    if running and not targets:
        raise TransientAdapterError("no host")
    load = {h: (len(placement.running(h)), i) for i, h in enumerate(targets)}
    planned = []
    for vm in running:
        dst = min(targets, key=load.__getitem__)
        load[dst] = (load[dst][0] + 1, load[dst][1])
        planned.append((vm, dst))
    return planned


@pytest.mark.parametrize("seed", range(40))
def test_drs_picks_what_a_scan_of_the_cluster_picks(seed: int) -> None:
    """Through random moves and busy hosts, the index picks the same hosts as a scan."""
    rng = random.Random(seed)
    hosts = tuple(f"h{i}" for i in range(rng.randint(1, 12)))
    cluster = Cluster("c", Drs.FULLY_AUTOMATED, hosts)
    vms = {f"vm{i}": VmRecord(f"vm{i}", rng.choice(hosts), rng.random() < 0.8)
           for i in range(rng.randint(0, 30))}
    placement = Placement([cluster], vms)
    for step in range(60):
        host = rng.choice(hosts)
        busy = {h for h in hosts if rng.random() < 0.3}
        try:
            expected: list[tuple[str, str]] | str = _scan(placement, cluster, host, busy)
        except TransientAdapterError:
            expected = "refused"
        try:
            got: list[tuple[str, str]] | str = placement.drs_evacuation(
                "c", host, busy.__contains__)
        except TransientAdapterError:
            got = "refused"
        assert got == expected, (seed, step)
        if vms and rng.random() < 0.7:
            placement.move(rng.choice(list(vms)), rng.choice(hosts), float(step))
    fresh = Placement([cluster], vms)  # rebuilt from scratch: the same VMs on each host
    assert [sorted(fresh.running(h)) for h in hosts] == [sorted(placement.running(h))
                                                          for h in hosts]
