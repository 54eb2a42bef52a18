"""``compatibility: {opsman_url: ...}``: the PKS and Ops Manager versions as Ops Manager
reports them, instead of typed ones.

The PKS tile's version comes from ``GET /api/v0/deployed/products``, Ops Manager's from
``GET /api/v0/info`` (:mod:`upgrade.adapters.opsman.client`).  Ops Manager 2.x writes only
its minor release (``2.3-build.123``): a typed ``opsman: "2.3.1"`` then names the patch and
must fit the reading; a typed ``pks`` must equal the tile's version.  A disagreement is
refused (exit 4) naming both.
"""

from __future__ import annotations

import dataclasses

from upgrade.adapters.opsman.client import read_opsman
from upgrade.inputs.playbook import Loaded


async def with_reported_versions(loaded: Loaded) -> Loaded:
    """``loaded`` with ``compatibility.pks``/``opsman`` read from its Ops Manager (as is
    when the playbook names none)."""
    source = loaded.opsman_url
    if source is None:
        return loaded
    reading = await read_opsman(source.url, ca_bundle=source.ca_bundle)
    declared = loaded.playbook.compatibility
    pks, opsman = reading.settle(
        declared.pks, declared.opsman, pks_key=f"{loaded.path}: compatibility.pks",
        opsman_key=f"{loaded.path}: compatibility.opsman",
        minor_only=lambda seen: source.where.error(
            f"Ops Manager at {reading.url} reports only its minor version ({seen.text}); name "
            f"the patch release beside opsman_url as opsman: \"{seen.version}.N\""))
    compat = dataclasses.replace(declared, pks=pks, opsman=opsman)
    playbook = dataclasses.replace(loaded.playbook, compatibility=compat)
    return dataclasses.replace(loaded, playbook=playbook)
