"""The `--events` stream's rules on journal-shaped steps (the pure part of upgrade.shell.events)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from upgrade.core.plan import Phase
from upgrade.shell.events import EventLog


def _log(path: Path, started: set[str] | None = None) -> EventLog:
    log = EventLog(path)
    group = SimpleNamespace(units=("h1",))
    engine: Any = SimpleNamespace(
        plan=SimpleNamespace(phases=(SimpleNamespace(name=Phase.HOSTS, groups=(group,)),),
                             target_version="2.3.0.0"),
        unit_times={key: [0.0, None] for key in started or set()})
    log.attach("2026-12-01T01:00:00+00:00", engine, origin=100.0)
    return log


def _notice(kind: str, message: str, unit: str = "") -> dict[str, Any]:
    return {"type": "Notice", "kind": kind, "message": message, "unit": unit}


def test_signals_windows_and_resumes(tmp_path: Path) -> None:
    """SIGTERM is named as the operator's; a unit started by an earlier process gets no
    second unit_started; future engine notices (window, canary) pass through under their
    own type; times count from the run's origin on its clock."""
    path = tmp_path / "e.jsonl"
    log = _log(path, started={"h1"})
    log.replay_step({"type": "Resumed", "retry_failed": True, "skip": []},
                    [{"type": "Start", "op": "upgrade", "unit": "h1"},
                     _notice("retry", "retrying h1", "h1")], 160.0)
    log.replay_step({"type": "PauseRequested", "reason": "SIGTERM received"},
                    [_notice("stopping", "SIGTERM received")], 170.0)
    log.replay_step({"type": "Polled", "op": "upgrade", "unit": "h1", "state": "done"},
                    [_notice("unit_done", "h1 upgraded", "h1"),
                     _notice("window_closed", "the window closed; next opens Sat 01:00"),
                     _notice("paused", "SIGTERM received")], 3700.0)
    log.close()
    events = [json.loads(line) for line in path.read_text().splitlines()]
    assert [e["type"] for e in events] == ["resumed", "unit_retry", "unit_done",
                                           "window_closed", "paused"]
    assert events[0]["sim_s"] == 60 and events[0]["at"] == "2026-12-01T01:01:00+00:00"
    assert events[0]["detail"] == "resumed; retrying the failed units"
    assert events[2] == {"at": "2026-12-01T02:00:00+00:00", "sim_s": 3600.0,
                         "type": "unit_done", "phase": "hosts", "unit": "h1",
                         "detail": "upgraded"}
    assert events[-1]["detail"] == "SIGTERM received (asked by: operator (SIGTERM))"


def test_a_closed_pipe_stops_the_stream_not_the_run(tmp_path: Path) -> None:
    """When the consumer goes away the log stops writing and says so once; no error."""
    log = _log(tmp_path / "e.jsonl")

    class Closed:
        def write(self, text: str) -> int:
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self) -> None:
            pass

        def close(self) -> None:
            pass

    log._out = Closed()  # type: ignore[assignment]
    log.emit("run_started", 100.0)
    log.emit("run_done", 200.0)  # silently dropped
