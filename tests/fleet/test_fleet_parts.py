"""The fleet's pure parts, without a server: the payload codec, the compact engine inputs, the
driver and the site journal that a terminated site is recovered from."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.converter import DataConverter

from tests.run_support import LAB
from upgrade.core.engine.core import Engine
from upgrade.core.engine.messages import (
    Begin,
    Event,
    OpState,
    Poll,
    Polled,
    Start,
    Started,
    TimerFired,
    Wake,
    encode,
)
from upgrade.core.engine.timing import Policy
from upgrade.core.model import Host, Inventory, Vm
from upgrade.fleet import sitelog
from upgrade.fleet.codec import REFERENCE, ZLIB, CompactCodec
from upgrade.fleet.driver import Driver, reconcile_keys
from upgrade.fleet.inputs import pack, unpack
from upgrade.fleet.shared import SiteInput
from upgrade.inputs.playbook import load_playbook
from upgrade.prepare.inputs import read_inputs
from upgrade.prepare.planning import prepare_loaded

#: Temporal warns at payloads over this size
WARN_BYTES = 512 * 1024


def lab_inputs() -> tuple[Any, Inventory, Policy]:
    """The lab's plan, inventory and policy, as ``fleet run`` builds them."""
    prepared = prepare_loaded(asyncio.run(read_inputs(LAB)))
    plan = dataclasses.replace(prepared.plan, compatibility={}, schedule=())
    return plan, prepared.inventory, Policy.from_playbook(load_playbook(LAB))


def roundtrip(codec: CompactCodec, payload: Payload) -> tuple[Payload, Payload]:
    """``payload`` encoded, and decoded again."""
    encoded = asyncio.run(codec.encode([payload]))[0]
    return encoded, asyncio.run(codec.decode([encoded]))[0]


def test_the_codec_leaves_small_payloads_and_compresses_big_ones(tmp_path: Path) -> None:
    codec = CompactCodec(tmp_path)
    small = Payload(metadata={"encoding": b"json/plain"}, data=b'{"a": 1}')
    assert roundtrip(codec, small) == (small, small)
    text = Payload(metadata={"encoding": b"json/plain"}, data=json.dumps(
        [f"host-{i}" for i in range(5000)]).encode())
    encoded, decoded = roundtrip(codec, text)
    assert encoded.metadata["encoding"] == ZLIB and len(encoded.data) < len(text.data) / 4
    assert decoded == text


def test_a_payload_still_big_when_compressed_goes_by_reference(tmp_path: Path) -> None:
    """Stored once under its SHA-256; a file changed afterwards is refused, not used."""
    codec = CompactCodec(tmp_path)
    big = Payload(metadata={"encoding": b"binary/plain"}, data=os.urandom(600_000))
    encoded, decoded = roundtrip(codec, big)
    assert encoded.metadata["encoding"] == REFERENCE and len(encoded.data) == 64
    assert decoded == big
    stored = tmp_path / encoded.data.decode()
    assert stored.is_file()
    data = bytearray(stored.read_bytes())
    data[100] ^= 0xFF
    stored.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="does not match its digest"):
        asyncio.run(CompactCodec(tmp_path).decode([encoded]))


def test_a_site_of_10000_hosts_with_30_vms_each_fits_a_payload(tmp_path: Path) -> None:
    """The workflow input of a 10,000-host site with 30 VMs per host: under 512 KB as Temporal
    stores it (by reference), and the engine inputs come back equal."""
    plan, inventory, policy = lab_inputs()
    hosts = tuple(Host(f"h-{i:05d}", "compute-cluster-a",
                       tuple(Vm(f"vm-{i:05d}-{v:02d}", v % 7 != 0) for v in range(30)))
                  for i in range(10_000))
    big = dataclasses.replace(inventory, hosts=hosts)
    text, digest = pack(plan, big, policy)
    site = SiteInput("f", "s", "p.yaml", "/tmp/s", "simulated", 1.0, text, digest)
    payload = DataConverter.default.payload_converter.to_payloads([site])[0]
    assert len(payload.SerializeToString()) > 10 * WARN_BYTES
    encoded = asyncio.run(CompactCodec(tmp_path).encode([payload]))[0]
    assert len(encoded.SerializeToString()) < WARN_BYTES
    decoded = asyncio.run(CompactCodec(tmp_path).decode([encoded]))[0]
    back = DataConverter.default.payload_converter.from_payloads([decoded], [SiteInput])[0]
    assert back == site
    from upgrade.fleet import inputs

    inputs._cache.clear()  # decoded from the text, not remembered from pack
    assert unpack(back.inputs, back.digest) == (plan, big, policy)


def test_decoding_a_site_input_keeps_its_inputs_and_a_fresh_engine(tmp_path: Path) -> None:
    """The codec decodes a site's plan and inventory as it decodes the workflow input (on
    the worker's event loop, before the workflow code): the workflow then finds them kept,
    with a fresh engine for its snapshots equal to one made from scratch; a site input that
    cannot make an engine still decodes (the workflow meets the error)."""
    from upgrade.fleet import inputs

    plan, inventory, policy = lab_inputs()
    hosts = tuple(Host(h.id, h.cluster, tuple(Vm(f"{h.id}-vm-{v:04d}") for v in range(2000)))
                  for h in inventory.hosts)
    big = dataclasses.replace(inventory, hosts=hosts)
    text, digest = pack(plan, big, policy)
    site = SiteInput("f", "s", "p.yaml", "/tmp/s", "simulated", 1.0, text, digest)
    payload = DataConverter.default.payload_converter.to_payloads([site])[0]
    encoded = asyncio.run(CompactCodec(tmp_path).encode([payload]))[0]
    inputs._cache.clear()
    inputs._fresh.clear()
    asyncio.run(CompactCodec(tmp_path).decode([encoded]))
    assert digest in inputs._cache and digest in inputs._fresh
    assert inputs._cache[digest] == (plan, big, policy)
    engine = Engine(plan, big, policy)
    assert site.fresh_engine() is inputs._fresh[digest]
    assert site.fresh_engine().snapshot() == engine.snapshot()

    wrong = dataclasses.replace(big, hosts=tuple(dataclasses.replace(h, id=f"x-{h.id}")
                                                 for h in hosts))
    text, digest = pack(plan, wrong, policy)
    inputs._cache.clear()
    site = SiteInput("f", "s", "p.yaml", "/tmp/s", "simulated", 1.0, text, digest)
    payload = DataConverter.default.payload_converter.to_payloads([site])[0]
    codec = CompactCodec(tmp_path)
    decoded = asyncio.run(codec.decode(asyncio.run(codec.encode([payload]))))[0]
    assert decoded == payload and digest not in inputs._fresh
    with pytest.raises(KeyError):
        site.fresh_engine()


def _answer(action: Any) -> Event:
    """A made-up target's answer: every start runs 10 s, every poll says done."""
    if isinstance(action, Start):
        return Started(0.0, action.op, action.unit, None)
    if isinstance(action, Poll):
        return Polled(action.at, action.op, action.unit, OpState.DONE)
    assert isinstance(action, Wake)
    return TimerFired(action.at, action.token)


def test_the_site_journal_gives_back_the_engine_and_what_it_waited_on(tmp_path: Path) -> None:
    """Rounds of fed events journaled as the activity writes them (one round twice, as a
    retried call does; a last line cut short by a crash): :func:`sitelog.recover` gives the
    same engine state and the same outstanding actions as the driver that fed them."""
    plan, inventory, policy = lab_inputs()
    text, digest = pack(plan, inventory, policy)
    site = SiteInput("f", "s", "p.yaml", str(tmp_path), "simulated", 1.0, text, digest)
    sitelog.save_input(tmp_path, site)
    driver = Driver(Engine(plan, inventory, policy))
    fed = [encode(driver.feed(Begin(0.0)))]
    for round_no in range(40):
        sitelog.append(tmp_path, round_no, 1000.0, fed)
        if round_no == 7:
            sitelog.append(tmp_path, round_no, 1000.0, fed)  # a retried call
        # what the journal holds: the outcomes of the last call are not journaled yet
        journaled = (driver.engine.snapshot(), list(driver.outstanding))
        fed = []
        for action in list(driver.outstanding.values())[:3]:
            event = _answer(action)
            fed.append(encode(driver.feed(dataclasses.replace(
                event, at=max(event.at, driver.last + 1.0)))))  # type: ignore[type-var]
    with (tmp_path / sitelog.JOURNAL_FILE).open("a") as out:
        out.write('{"round": 40, "origin": 1000.0, "fed": [{"ty')
    recovered = sitelog.recover(tmp_path)
    assert recovered.origin == 1000.0 and recovered.round == 40
    assert (recovered.driver.engine.snapshot(), list(recovered.driver.outstanding)) == \
        journaled
    assert recovered.driver.engine.snapshot() != driver.engine.snapshot()
    keys = reconcile_keys(list(recovered.driver.outstanding.values()))
    assert all(k.startswith("start|") for k in keys)


def test_a_state_dir_without_a_record_cannot_be_recovered(tmp_path: Path) -> None:
    from upgrade.errors import InputError

    with pytest.raises(InputError, match="no recorded input"):
        sitelog.recover(tmp_path)


def _driven_to_a_pause() -> Driver:
    """The lab's engine, paused by a request right after its start."""
    from upgrade.core.engine.machines import RunState
    from upgrade.core.engine.messages import PauseRequested

    plan, inventory, policy = lab_inputs()
    driver = Driver(Engine(plan, inventory, policy))
    driver.feed(Begin(0.0))
    driver.feed(PauseRequested(1.0, "test"))
    while not driver.engine.settled:
        action = next(iter(driver.outstanding.values()))
        event = _answer(action)
        driver.feed(dataclasses.replace(event, at=max(event.at, driver.last + 1.0)))
    assert driver.engine.state is RunState.PAUSED
    return driver


def test_resume_drops_a_pending_pause_and_goes_on_when_paused() -> None:
    """The workflow's signals: a pause not yet passed to the engine is cancelled by a resume
    (nothing pauses); a paused site with a pause pending goes on."""
    from upgrade.fleet.workflow import SiteWorkflow

    plan, inventory, policy = lab_inputs()
    running = SiteWorkflow()
    running._driver = Driver(Engine(plan, inventory, policy))
    running._driver.feed(Begin(0.0))
    running.pause("fleet pause")
    running.resume()
    assert running._pause is None and not running._resume
    paused = SiteWorkflow()
    paused._driver = _driven_to_a_pause()
    paused.pause("fleet pause")
    paused.resume(retry_failed=True)
    assert paused._resume and paused._retry_failed and paused._pause is None
