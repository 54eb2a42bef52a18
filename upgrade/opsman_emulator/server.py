"""Serve the Ops Manager API emulator with uvicorn on 127.0.0.1 (HTTPS with ``tls``)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import uvicorn

from upgrade.errors import InputError
from upgrade.opsman_emulator.app import Accounts, create_app


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: :func:`serve` handles signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(state_dir: Path, accounts: Accounts, *, port: int = 0,
                tls: tuple[Path, Path] | None = None,
                ready: Callable[[str], None] = lambda url: None) -> None:
    """Serve until SIGINT/SIGTERM; ``ready(url)`` once connections are accepted."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError as exc:
        sock.close()
        raise InputError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}; pick "
                         "another --port or 0 for a free one") from None
    config = uvicorn.Config(
        create_app(state_dir, accounts), log_level="warning", access_log=False,
        lifespan="off", timeout_graceful_shutdown=1,
        ssl_certfile=str(tls[0]) if tls else None, ssl_keyfile=str(tls[1]) if tls else None,
    )
    server = _Server(config)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, lambda: setattr(server, "should_exit", True))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            await task
            return
        await asyncio.sleep(0.01)
    ready(f"{'https' if tls else 'http'}://127.0.0.1:{sock.getsockname()[1]}")
    await task
    sock.close()
