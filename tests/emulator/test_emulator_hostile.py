"""The emulator under hostile requests: 400 and 413 with NSX error bodies, never a traceback.

Found as: a deeply nested JSON body gave a 500 with a RecursionError, a client
that hung up mid-body logged an ASGI traceback, a 200 MB JSON body was
accepted, and a port already in use was an OSError traceback.  Everything here
goes to the real server (a subprocess) over real sockets, and its stderr is
read at the end.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.emulator.test_emulator import UP, ok, units
from tests.nsxt_emulator_support import (
    PASSWORD,
    ROOT,
    USERNAME,
    Emulator,
    running_emulator,
    start_emulator,
    write_inventory,
)
from upgrade.emulator.limits import MAX_BODY, MAX_DEPTH

ERROR_KEYS = {"error_code", "module_name", "error_message"}  # VMware's ApiError
AUTH = base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    with running_emulator(tmp_path_factory.mktemp("hostile")) as emu:
        yield emu
    log = emu.log.read_text()
    assert "Traceback" not in log and "Exception in ASGI" not in log, log


def refused(response: httpx.Response, status: int = 400) -> dict[str, Any]:
    """An NSX error body with ``status``."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == ERROR_KEYS, body
    return body


def nested(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = [value]
    return value


def test_bad_json_bodies_are_400(emulator: Emulator) -> None:
    """Invalid JSON, deep nesting, huge numbers, non-objects: 400 BAD_REQUEST, nothing kept."""
    settings = f"{UP}/plan/HOST/settings"
    with emulator.client() as client:
        before = ok(client.get(settings))
        for content in (b"{not json", b"[" * 100_000 + b"]" * 100_000, b"\xff\xfe\x00",
                        b'{"parallel": ' + b"1" * 5000 + b"}", b"[1, 2]", b""):
            body = refused(client.put(settings, content=content,
                                      headers={"content-type": "application/json"}))
            assert body["error_code"] == 255
        deep = refused(client.put(settings, json={"parallel": nested(MAX_DEPTH + 5)}))
        assert "deeper than" in deep["error_message"]
        assert ok(client.get(settings)) == before  # nothing the bad bodies said was kept


def test_wrong_types_are_400(emulator: Emulator) -> None:
    """Fields of the wrong type are refused before anything changes."""
    with emulator.client() as client:
        groups = ok(client.get(f"{UP}/upgrade-unit-groups"))["results"]
        host_group = groups[0]["id"]
        esx = units(client)["esx-01"]["id"]
        create = f"{UP}/upgrade-unit-groups"
        for request in (
            client.put(f"{UP}/plan/HOST/settings", json={"parallel": "yes"}),
            client.post(create, json={"display_name": "g", "type": "HOST",
                                      "upgrade_units": "esx-01"}),
            client.post(create, json={"display_name": "g", "type": "HOST",
                                      "upgrade_units": [{"id": {"x": 1}}]}),
            client.post(create, json={"display_name": "g", "type": "HOST",
                                      "extended_configuration": 5}),
            client.put(f"{create}/{host_group}", json={"display_name": 7}),
            client.put(f"{create}/{host_group}", json={"upgrade_units": [{"id": esx}, 3]}),
            client.put(f"{create}/{host_group}",
                       json={"extended_configuration": [{"key": "upgrade_mode", "value": []}]}),
            client.post(f"{create}/{host_group}", params={"action": "reorder"}, json={"id": 5}),
            client.post(f"{UP}/plan", params={"action": "upgrade_selected_units"},
                        json={"list": [{"id": {"x": 1}}]}),
            client.post(f"{UP}/bundles", json={"url": ["http://x/y.mub"]}),
        ):
            assert refused(request)["error_code"] in (255, 202)
        assert ok(client.get(f"{UP}/upgrade-unit-groups"))["results"] == groups
        for params in ({"page_size": "\u00b2"}, {"cursor": "9" * 5000},
                       {"page_size": "9" * 5000}):
            assert ok(client.get(f"{UP}/upgrade-units", params=params))["result_count"] == 7


def test_bodies_over_the_limit_are_413(emulator: Emulator) -> None:
    """A JSON body past the limit is 413 (declared or not); the bundle upload takes more."""
    with emulator.client() as client:
        big = b'{"parallel": true, "x": "' + b"a" * MAX_BODY + b'"}'
        body = refused(client.put(f"{UP}/plan/HOST/settings", content=big,
                                  headers={"content-type": "application/json"}), 413)
        assert "error_message" in body

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it comes
            yield b'{"x": "'
            for _ in range(2 * MAX_BODY // 65536):
                yield b"a" * 65536
            yield b'"}'

        refused(client.put(f"{UP}/plan/HOST/settings", content=chunks(),
                           headers={"content-type": "application/json"}), 413)
    status, answer = raw(emulator, _head("PUT", f"{UP}/plan/HOST/settings", 200_000_000))
    assert status == 413 and set(answer) == ERROR_KEYS
    with emulator.client() as client:
        files = {"file": ("VMware-NSX-upgrade-bundle.mub", b"\0" * (3 * MAX_BODY))}
        bundle = ok(client.post(f"{UP}/bundles", params={"action": "upload"}, files=files))
        info = ok(client.get(f"{UP}/bundles/{bundle['bundle_id']}"))
        assert int(info["bundle_size"]) > 3 * MAX_BODY


def test_a_client_that_hangs_up_mid_body(tmp_path: Path) -> None:
    """A body cut short (JSON or upload) leaves no trace in the log; the next client is served."""
    with running_emulator(tmp_path) as emulator:
        for head in (_head("PUT", f"{UP}/plan/HOST/settings", 1000) + b'{"parallel": ',
                     _head("POST", f"{UP}/bundles?action=upload", 100_000,
                           "multipart/form-data; boundary=b") + b"--b\r\n" + b"x" * 1000):
            with socket.create_connection(_address(emulator), timeout=10) as sock:
                sock.sendall(head)
        with emulator.client() as client:
            assert ok(client.get(f"{UP}/summary"))["system_version"] == "2.1.0.0"
            assert ok(client.get(f"{UP}/plan/HOST/settings"))["pause_on_error"] is True
            assert client.get(f"{UP}/bundles/latest").status_code == 404  # none uploaded
    assert emulator.log.read_text() == ""


def test_a_port_in_use_is_one_line_and_exit_2(tmp_path: Path) -> None:
    """A busy --port: one line naming it, exit 2, and the state dir starts fine afterwards."""
    inventory = write_inventory(tmp_path)
    state = tmp_path / "state"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "upgrade", "emulate", "nsxt", "--inventory", str(inventory),
             "--state-dir", str(state), "--port", str(port)],
            capture_output=True, text=True, timeout=60, cwd=ROOT,
            env={**os.environ, "NSXT_USERNAME": USERNAME, "NSXT_PASSWORD": PASSWORD})
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert result.stderr == (f"error: 127.0.0.1:{port} is already in use; pick another --port "
                             "or 0 for a free one\n")
    emu = start_emulator(inventory, state)
    try:
        with emu.client() as client:
            assert ok(client.get(f"{UP}/summary"))["system_version"] == "2.1.0.0"
    finally:
        emu.stop()


# -- raw HTTP -----------------------------------------------------------------------------


def _address(emulator: Emulator) -> tuple[str, int]:
    host, _, port = emulator.url.split("://")[1].rpartition(":")
    return host, int(port)


def _head(method: str, path: str, length: int, kind: str = "application/json") -> bytes:
    return (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic {AUTH}\r\n"
            f"Content-Type: {kind}\r\nContent-Length: {length}\r\n\r\n").encode()


def raw(emulator: Emulator, request: bytes) -> tuple[int, Any]:
    """Send ``request`` as is; the answer's status and JSON body."""
    with socket.create_connection(_address(emulator), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            data += sock.recv(65536) or b"\r\n\r\n"
        head, _, body = data.partition(b"\r\n\r\n")
        fields = dict(line.split(b": ", 1) for line in head.split(b"\r\n")[1:])
        length = int(fields.get(b"content-length", b"0"))
        while len(body) < length and (more := sock.recv(65536)):
            body += more
    return int(head.split()[1]), json.loads(body)
