"""Build the real-target adapter a playbook names, with credentials from the environment.

This module is the one place credentials are read (the adapters' and the emulator's);
they go into clients and never into a message or a log.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from upgrade.adapters.nsxt.adapter import NsxtAdapter
from upgrade.adapters.nsxt.vcenter import MaintenanceClient
from upgrade.clock import Clock, RealClock
from upgrade.core.model import Inventory, Playbook
from upgrade.errors import InputError


def credentials(prefix: str, site: str | None = None) -> tuple[str, str]:
    """``PREFIX_USERNAME`` and ``PREFIX_PASSWORD`` from the environment, or a clear error.

    For a fleet ``site``, ``PREFIX_USERNAME_<SITE>`` and ``PREFIX_PASSWORD_<SITE>`` (the
    name upper-cased, other characters than letters and digits as ``_``) come first.
    """
    suffix = "_" + re.sub(r"[^A-Z0-9]", "_", site.upper()) if site else ""
    user, password = _from_environment(prefix, suffix)
    if not user or password is None:
        names = f"{prefix}_USERNAME and {prefix}_PASSWORD"
        if suffix:
            names = f"{prefix}_USERNAME{suffix} and {prefix}_PASSWORD{suffix} (or {names})"
        raise InputError(f"set {names} in the environment (credentials never go in playbooks)")
    return user, password


def emulator_credentials() -> tuple[str, str]:
    """The user name and password ``emulate nsxt`` accepts: the ones the ``nsxt`` adapter
    logs in with (``NSXT_USERNAME``, ``NSXT_PASSWORD``), neither empty, or a clear error."""
    user, password = _from_environment("NSXT", "")
    if not user or not password:
        raise InputError("set NSXT_USERNAME and NSXT_PASSWORD: the emulator accepts those "
                         "credentials")
    return user, password


def _from_environment(prefix: str, suffix: str) -> tuple[str | None, str | None]:
    """The one place credentials are read: ``PREFIX_USERNAME<suffix>`` (else without the
    suffix) and ``PREFIX_PASSWORD<suffix>`` (else without it; an empty one counts)."""
    user = os.environ.get(f"{prefix}_USERNAME{suffix}") or os.environ.get(f"{prefix}_USERNAME")
    password = os.environ.get(f"{prefix}_PASSWORD{suffix}")
    if password is None:
        password = os.environ.get(f"{prefix}_PASSWORD")
    return user, password


def nsxt_adapter(playbook: Playbook, clock: Clock, state_dir: Path | None = None,
                 site: str | None = None) -> NsxtAdapter:
    """The NSX-T Manager adapter (with vCenter for maintenance mode when the playbook names one)."""
    spec = playbook.inventory
    assert spec.manager is not None
    base = Path(playbook.path).parent
    ca = str(base / spec.ca_bundle) if spec.ca_bundle else None
    user, password = credentials("NSXT", site)
    vsphere = None
    if spec.vcenter:
        vcenter = spec.vcenter
        vs_user, vs_password = credentials("VSPHERE", site)

        async def connect() -> MaintenanceClient:
            from upgrade.adapters.vsphere.client import VSphereClient

            return await VSphereClient.connect(vcenter, vs_user, vs_password, ca_bundle=ca,
                                               insecure=spec.insecure)

        vsphere = connect
    return NsxtAdapter(
        spec.manager, user, password, playbook.target_version,
        bundle_path=base / playbook.bundle.path if playbook.bundle.path else None,
        bundle_url=playbook.bundle.url, ca_bundle=ca, insecure=spec.insecure,
        vsphere=vsphere, state_dir=state_dir, clock=clock,
    )


async def discover(playbook: Playbook, site: str | None = None) -> Inventory:
    """The inventory the manager (and vCenter) of ``playbook`` report: reads, changes nothing."""
    adapter = nsxt_adapter(playbook, RealClock.starting_at(0.0, 1.0), site=site)
    try:
        return await adapter.inventory()
    finally:
        await adapter.close()


async def check_access(playbook: Playbook) -> None:
    """Before resuming: AdapterError (naming the fix) when the manager or vCenter refuses the
    credentials in the environment or the certificate; unreachable ones pass."""
    adapter = nsxt_adapter(playbook, RealClock.starting_at(0.0, 1.0))
    try:
        await adapter.check_access()
    finally:
        await adapter.close()
