"""Connect to the Temporal cluster a fleet file names (address, namespace, TLS), with the
fleet's payload codec, the SDK's own log lines on stderr (never on stdout, no colours)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import sys
from pathlib import Path

from temporalio.client import Client
from temporalio.converter import DataConverter
from temporalio.runtime import (
    LogForwardingConfig,
    LoggingConfig,
    Runtime,
    TelemetryConfig,
    TelemetryFilter,
)
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


_runtime: Runtime | None = None


def runtime() -> Runtime:
    """The SDK runtime of this process: its core's warnings forwarded to a plain stderr
    logger (the default prints coloured lines to stdout, into ``fleet run``'s output)."""
    global _runtime
    if _runtime is None:
        logger = logging.getLogger("temporalio.core")
        if not logger.handlers:
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(logging.Formatter("temporal: %(levelname)s %(message)s"))
            logger.addHandler(handler)
            logger.propagate = False
        logger.setLevel(logging.WARNING)
        _runtime = Runtime(telemetry=TelemetryConfig(logging=LoggingConfig(
            filter=TelemetryFilter(core_level="WARN", other_level="ERROR"),
            forwarding=LogForwardingConfig(logger=logger))))
    return _runtime


def data_converter(store: Path | None) -> DataConverter:
    """Temporal's default converter with the fleet's payload codec (:mod:`.codec`)."""
    from upgrade.fleet.codec import CompactCodec

    return dataclasses.replace(DataConverter.default, payload_codec=CompactCodec(store))


async def connect(settings: TemporalSettings, wait_s: float = 0.0,
                  store: Path | None = None) -> Client:
    """A client of ``settings``' cluster (payloads by reference in ``store``); keeps trying
    for ``wait_s`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    while True:
        try:
            return await Client.connect(settings.address, namespace=settings.namespace,
                                        tls=tls_config(settings), runtime=runtime(),
                                        data_converter=data_converter(store))
        except (RuntimeError, RPCError) as exc:
            if loop.time() >= deadline:
                raise TemporalUnreachable(
                    f"cannot reach Temporal at {settings.address} (namespace "
                    f"{settings.namespace}): {exc}; start one (`temporal server start-dev`) or "
                    "fix temporal.address in the fleet file") from exc
            await asyncio.sleep(0.5)
