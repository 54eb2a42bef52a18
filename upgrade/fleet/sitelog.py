"""A fleet site's own record in its state dir, which no Temporal termination can erase.

* ``fleet-input.json``: the site workflow's input (plan, inventory, policy), written by the
  client when it starts the site;
* ``fleet-journal.jsonl``: one line per activity call, written by the activity before it
  does anything: the events the workflow fed its engine since the previous call, in order.

Feeding every journaled event to a fresh engine (:func:`recover`) gives the engine as the
workflow had it at its last call, and the starts, polls and timers it was waiting on: the
last call's outcomes are the only thing missing, and a new run asks the target about those
(reconciliation).  That is the way back for a terminated, timed-out or failed workflow.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from temporalio.api.common.v1 import Payload
from temporalio.converter import DataConverter

from upgrade.core.engine.core import Engine
from upgrade.core.engine.messages import Begin, decode
from upgrade.errors import InputError
from upgrade.fleet.driver import Driver
from upgrade.fleet.shared import SiteInput

INPUT_FILE = "fleet-input.json"
JOURNAL_FILE = "fleet-journal.jsonl"


def save_input(state_dir: Path, site: SiteInput) -> None:
    """Write the site's workflow input (atomically) for a later recovery."""
    payload = DataConverter.default.payload_converter.to_payloads([site])[0]
    state_dir.mkdir(parents=True, exist_ok=True)
    tmp = state_dir / (INPUT_FILE + ".tmp")
    tmp.write_bytes(payload.data)
    tmp.replace(state_dir / INPUT_FILE)


def load_input(state_dir: Path) -> SiteInput:
    """The input :func:`save_input` wrote; InputError when there is none."""
    path = state_dir / INPUT_FILE
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: the site has no recorded input ({exc.strerror}); was it "
                         "ever started by `fleet run`?") from exc
    payload = Payload(metadata={"encoding": b"json/plain"}, data=data)
    site = DataConverter.default.payload_converter.from_payloads([payload], [SiteInput])[0]
    assert isinstance(site, SiteInput)
    return site


def append(state_dir: Path, round_no: int, origin: float, fed: list[dict[str, Any]]) -> None:
    """Journal one call's fed events (a retried call writes the same round again)."""
    line = json.dumps({"round": round_no, "origin": origin, "fed": fed},
                      separators=(",", ":")) + "\n"
    with (state_dir / JOURNAL_FILE).open("a", encoding="utf-8") as out:
        out.write(line)


def read(state_dir: Path) -> list[dict[str, Any]]:
    """The journal's records, each round once (its first copy), in the order written; a line
    cut short by a crash is left out."""
    records: list[dict[str, Any]] = []
    seen: set[int] = set()
    try:
        text = (state_dir / JOURNAL_FILE).read_text(encoding="utf-8")
    except FileNotFoundError:
        return records
    for raw in text.splitlines():
        try:
            record = json.loads(raw)
            round_no = int(record["round"])
        except (ValueError, KeyError, TypeError):
            continue
        if round_no in seen:
            continue
        seen.add(round_no)
        records.append(record)
    return records


@dataclass
class Recovered:
    """A site's engine as its journal leaves it."""

    site: SiteInput
    driver: Driver
    #: the next call's round number
    round: int
    #: the site clock's origin (epoch seconds at which it read 0); None: never started
    origin: float | None


def recover(state_dir: Path) -> Recovered:
    """Replay the site's journal through a fresh engine (InputError: nothing recorded)."""
    site = load_input(state_dir)
    plan, inventory, policy = site.engine_inputs()
    driver = Driver(Engine(plan, inventory, policy))
    records = read(state_dir)
    origin = None
    for record in records:
        origin = float(record["origin"])
        for data in record["fed"]:
            driver.feed(decode(data))
    if not records or not records[0]["fed"] or \
            not isinstance(decode(records[0]["fed"][0]), Begin):
        driver = Driver(Engine(plan, inventory, policy))
        origin = None
    next_round = max((int(r["round"]) for r in records), default=-1) + 1
    return Recovered(site, driver, next_round, origin)
