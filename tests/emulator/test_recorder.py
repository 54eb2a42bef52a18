"""The emulator's ``--record`` middleware: an exchange is on record before its answer is.

Found as: a test that read the traffic right after an answer (the adapter's shared
group-status reads) failed about once in five runs on a busy machine, missing the
last read: the server wrote the record after sending the answer, so a client could
read the file first.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from starlette.types import Message, Receive, Scope, Send

from tests.emulator.contract import records
from upgrade.emulator.app import Recorder


def _scope(path: str = "/api/v1/upgrade/summary") -> Scope:
    return {"type": "http", "method": "POST", "path": path, "query_string": b"a=1",
            "headers": [(b"content-type", b"application/json"),
                        (b"authorization", b"Basic eDp5")]}


async def _receive() -> Message:
    return {"type": "http.request", "body": b'{"x": 1}', "more_body": False}


def _answering(*parts: bytes, fail: bool = False) -> Any:
    """An ASGI app that reads the request and answers 200 in ``parts`` (then, with
    ``fail``, raises before the last part)."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if last and fail:
                raise RuntimeError("the application broke off")
            await send({"type": "http.response.body", "body": part, "more_body": not last})

    return app


def test_the_record_is_written_before_the_answer_is_complete(tmp_path: Path) -> None:
    """When the last part of an answer leaves, its exchange is already in the file (and
    earlier parts leave before it is: the record has the whole body)."""
    path = tmp_path / "traffic.jsonl"
    recorder = Recorder(_answering(b'{"a": ', b"1}"), path)
    seen_at_send: list[tuple[bool, int]] = []

    async def send(message: Message) -> None:
        if message["type"] == "http.response.body":
            seen_at_send.append((message["more_body"], len(records(path))))

    try:
        asyncio.run(recorder(_scope(), _receive, send))
    finally:
        recorder.out.close()
    assert seen_at_send == [(True, 0), (False, 1)]
    (record,) = records(path)
    assert record["status"] == 200 and json.loads(record["response"]) == {"a": 1}
    assert record["body"] == '{"x": 1}' and record["query"] == "a=1"
    assert record["authorization"] is True


def test_an_answer_broken_off_is_still_recorded_once(tmp_path: Path) -> None:
    """An application that fails before its answer ends: the exchange is written once,
    with what was sent."""
    path = tmp_path / "traffic.jsonl"
    recorder = Recorder(_answering(b"{", b"}", fail=True), path)

    async def send(message: Message) -> None:
        return None

    try:
        with pytest.raises(RuntimeError, match="broke off"):
            asyncio.run(recorder(_scope(), _receive, send))
    finally:
        recorder.out.close()
    (record,) = records(path)
    assert record["status"] == 200 and record["response"] == "{"


def test_other_paths_are_not_recorded(tmp_path: Path) -> None:
    """Only ``/api/`` exchanges are the API's."""
    path = tmp_path / "traffic.jsonl"
    recorder = Recorder(_answering(b"ok"), path)

    async def send(message: Message) -> None:
        return None

    try:
        asyncio.run(recorder(_scope("/favicon.ico"), _receive, send))
    finally:
        recorder.out.close()
    assert records(path) == []
