"""What the journey learns from outside: Ops Manager's versions, and ``--confirm``."""

from __future__ import annotations

import asyncio

from upgrade.adapters.opsman.client import OpsmanReading, read_opsman
from upgrade.compat.matrix import Product
from upgrade.compat.path import State
from upgrade.core.versions import Version
from upgrade.errors import InputError, RefusedError
from upgrade.journey.gates import Reading
from upgrade.journey.spec import JourneySpec


def read_source(spec: JourneySpec) -> OpsmanReading | None:
    """One visit to the journey's Ops Manager (None when it names none)."""
    source = spec.opsman_source
    if source is None:
        return None
    return asyncio.run(read_opsman(source.url, ca_bundle=source.ca_bundle,
                                   insecure=source.insecure))


def readings_of(reading: OpsmanReading | None) -> dict[Product, Reading]:
    """Ops Manager's answer as readings (the PKS tile's only when one is deployed)."""
    if reading is None:
        return {}
    by = f"Ops Manager at {reading.url}"
    found = {Product.OPSMAN: Reading(reading.opsman.version, reading.opsman.patch_known, by)}
    if reading.pks is not None:
        found[Product.PKS] = Reading(reading.pks, True, by)
    return found


def parse_confirms(items: tuple[str, ...]) -> dict[Product, Reading]:
    """``--confirm pks=1.2.5`` (repeatable) as exact readings; InputError when malformed."""
    found: dict[Product, Reading] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip().lower()
        if not sep or key not in (Product.PKS.value, Product.OPSMAN.value):
            raise InputError(f"--confirm {item}: expected pks=VERSION or opsman=VERSION (NSX-T "
                             "is upgraded by the journey itself)")
        try:
            version = Version.parse(value)
        except ValueError as exc:
            raise InputError(f"--confirm {item}: {exc}") from None
        product = Product(key)
        if product in found:
            raise InputError(f"--confirm: {key} given twice")
        found[product] = Reading(version, True, "--confirm")
    return found


def merged(observed: dict[Product, Reading],
           confirmed: dict[Product, Reading]) -> dict[Product, Reading]:
    """``--confirm`` over Ops Manager's readings; a contradiction is refused (exit 4)."""
    result = dict(observed)
    for product, given in confirmed.items():
        seen = observed.get(product)
        if seen is not None and not seen.matches(given.version):
            raise RefusedError(f"--confirm {product.value}={given.version}, but {seen.by} "
                               f"reports {product.label} {seen.shown()}: the journey trusts "
                               "neither; check what runs and confirm again")
        result[product] = given
    return result


def start_state(spec: JourneySpec, reading: OpsmanReading | None) -> State:
    """Where the journey starts: the file's versions, Ops Manager's where it names one."""
    pks, opsman = spec.pks, spec.opsman
    if reading is not None:
        pks, opsman = reading.settle(
            pks, opsman, pks_key=f"{spec.path}: from.pks",
            opsman_key=f"{spec.path}: from.opsman.version",
            minor_only=lambda seen: InputError(
                f"Ops Manager at {reading.url} reports only its minor version ({seen.text}); "
                f"a path needs the patch release: name it as from: {{opsman: {{url: ..., "
                f"version: \"{seen.version}.N\"}}}}"))
    assert pks is not None
    return State(pks, spec.nsxt, opsman)
