"""The playbook with its inventory: read from its file, or discovered from the manager.

This is the one place that chooses between the two: the simulated adapter's inventory
is a file (read with the playbook, parsed once), the ``nsxt`` adapter's is what the
NSX Manager (and vCenter) report, read-only.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from upgrade.gcpause import collector_paused
from upgrade.inputs.playbook import Loaded, load


async def with_inventory(loaded: Loaded, site: str | None = None) -> Loaded:
    """``loaded`` with its inventory: as read, or discovered (``site`` names a fleet's site);
    with ``compatibility.opsman_url``, also the versions Ops Manager reports."""
    if loaded.opsman_url is not None:
        from upgrade.prepare.reported import with_reported_versions

        loaded = await with_reported_versions(loaded)
    if loaded.inventory is not None:
        return loaded
    from upgrade.adapters.factory import discover  # the nsxt adapter: HTTP clients

    return dataclasses.replace(loaded, inventory=await discover(loaded.playbook, site=site))


def read_files(playbook_path: Path) -> Loaded:
    """Read and validate ``playbook_path`` and the inventory file it names, if any."""
    with collector_paused():
        return load(playbook_path)


def without_connection(loaded: Loaded) -> bool:
    """True when ``loaded`` is complete as read: :func:`with_inventory` would contact
    nothing (a simulated inventory, PKS and Ops Manager versions as typed)."""
    return loaded.inventory is not None and loaded.opsman_url is None


async def read_inputs(playbook_path: Path, site: str | None = None) -> Loaded:
    """Read and validate ``playbook_path`` and get its inventory (see :func:`with_inventory`)."""
    return await with_inventory(read_files(playbook_path), site)
