"""Connect to the Temporal cluster a fleet file names (address, namespace, TLS)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from temporalio.client import Client
from temporalio.service import RPCError, TLSConfig

from upgrade.errors import UpgradeError
from upgrade.fleet.fleetfile import TemporalSettings


class TemporalUnreachable(UpgradeError):
    """The Temporal frontend did not answer (exit 1)."""


def tls_config(settings: TemporalSettings) -> TLSConfig | bool:
    """The SDK's TLS settings (False: plain gRPC, as the dev server speaks)."""
    tls = settings.tls
    if tls is None:
        return False

    def read(path: str | None) -> bytes | None:
        return Path(path).read_bytes() if path else None

    return TLSConfig(server_root_ca_cert=read(tls.ca), client_cert=read(tls.cert),
                     client_private_key=read(tls.key), domain=tls.server_name)


async def connect(settings: TemporalSettings, wait_s: float = 0.0) -> Client:
    """A client of ``settings``' cluster; keeps trying for ``wait_s`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    while True:
        try:
            return await Client.connect(settings.address, namespace=settings.namespace,
                                        tls=tls_config(settings))
        except (RuntimeError, RPCError) as exc:
            if loop.time() >= deadline:
                raise TemporalUnreachable(
                    f"cannot reach Temporal at {settings.address} (namespace "
                    f"{settings.namespace}): {exc}; start one (`temporal server start-dev`) or "
                    "fix temporal.address in the fleet file") from exc
            await asyncio.sleep(0.5)
