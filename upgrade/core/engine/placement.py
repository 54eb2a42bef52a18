"""VM placement restored (``hosts.restore_vm_placement: true``).

Pure, like the rest of the engine.  In a cluster whose DRS is not fully
automated the engine chooses where each powered-on VM of a host goes when the
host is evacuated; with restore on, the host's pipeline ends with one more
stage, after it has left maintenance: the VMs that were on it when the run
began, wherever they are now, are moved back (one ``Start(RESTORE, host,
moves)``, journaled like any other, chosen once so that a retry or a resume asks
for the very same moves).

Safety (DESIGN section 5): the destination is the host itself, out of
maintenance and never to enter it again in this run.  A restore waits while an
evacuation in its cluster is choosing or moving VMs (a VM in motion is moved by
one operation at a time), and no host of the cluster enters maintenance while a
restore is in flight (a host must not be emptied while VMs are moving onto or
off it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def homecoming(host: str, home: Mapping[str, Sequence[str]],
               running: dict[str, list[str]]) -> tuple[tuple[str, str], ...]:
    """The (vm, ``host``) moves that bring ``host``'s original VMs back; updates ``running``
    (host -> VMs the engine believes run there) as if they were done."""
    mine = set(home.get(host, ()))
    moves = []
    for where, vms in running.items():
        if where == host:
            continue
        back = [vm for vm in vms if vm in mine]
        for vm in back:
            vms.remove(vm)
            running[host].append(vm)
            moves.append((vm, host))
    order = {vm: i for i, vm in enumerate(home.get(host, ()))}
    return tuple(sorted(moves, key=lambda m: order[m[0]]))
