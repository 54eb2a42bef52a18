"""`nsxt-upgrade report`: planned against actual, from a real run's journal, in json,
markdown and a self-contained HTML page that headless Chromium renders."""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path
from typing import Any

import pytest

from tests.run_support import LAB, copy_playbooks, edit, nsxt
from upgrade.core.chronicle import chronicle
from upgrade.render.report_html import report_to_html
from upgrade.render.report_markdown import report_to_markdown

UNITS = ["esx-01", "esx-02", "esx-03", "esx-04", "edge-01", "edge-02", "ctrl-01", "nsx-mgr-01"]
FAULTS = ("faults:\n"
          "  - {unit: esx-02, op: enter_maintenance, kind: refuse, times: 1}\n"
          "  - {unit: edge-02, op: upgrade, kind: fail, times: 1}\n")


@pytest.fixture(scope="module")
def eventful(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A lab run with everything to report: a pause after the first host group, a refused
    maintenance entry retried, a failed edge (on_error: pause) retried with
    --retry-failed; the state directory it leaves."""
    tmp_path = tmp_path_factory.mktemp("eventful")
    books = copy_playbooks(tmp_path)
    inventory = books / "lab-inventory.yaml"
    inventory.write_text(inventory.read_text(encoding="utf-8") + FAULTS, encoding="utf-8")
    playbook = edit(books / LAB.name, "pause_after_each_group: false",
                    "pause_after_each_group: true")
    state_dir = tmp_path / "state"
    assert nsxt("run", playbook, "--yes", "--state-dir", state_dir).returncode == 3
    assert nsxt("resume", "--state-dir", state_dir).returncode == 3
    done = nsxt("resume", "--state-dir", state_dir, "--retry-failed")
    assert done.returncode == 0, done.stdout + done.stderr
    return state_dir


def report(state_dir: Path, fmt: str) -> str:
    """`report --format FMT` on stdout."""
    proc = nsxt("report", "--state-dir", state_dir, "--format", fmt)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_json_report_says_what_happened_against_the_plan(eventful: Path) -> None:
    """Per phase and unit the planned and actual start and duration and the outcome; the
    pauses with who asked (pause_after_each_group, then on_error) and when they were
    resumed; retries, the failure, every vMotion the tool made and the hosts DRS
    evacuated; the acknowledged finding."""
    doc = json.loads(report(eventful, "json"))
    assert doc["state"] == "done" and doc["units_done"] == doc["units_total"] == 8
    assert [p["name"] for p in doc["phases"]] == ["precheck", "bundle", "coordinator",
                                                  "hosts", "edges", "controllers",
                                                  "manager", "postcheck"]
    for phase in doc["phases"]:
        assert phase["outcome"] == "done"
        assert phase["actual_start_s"] >= phase["planned_start_s"]
    units = {u["id"]: u for u in doc["units"]}
    assert list(units) == UNITS
    for unit in units.values():
        assert unit["outcome"] == "upgraded"
        assert unit["planned_duration_s"] > 0 and unit["actual_duration_s"] > 0
    assert units["esx-02"]["retries"] == 1 and units["edge-02"]["retries"] == 1
    assert units["edge-02"]["failures"][0]["error"] == "upgrade on edge-02 failed " \
        "(simulated fault)"
    # the pauses slow the run down against its plan
    assert doc["actual_duration_s"] > doc["planned_duration_s"]

    pauses = doc["pauses"]
    assert [p["by"] for p in pauses] == ["pause_after_each_group", "on_error"]
    assert all(p["outcome"] == "paused" and p["resumed_at_s"] is not None for p in pauses)
    assert "compute-cluster-a" in pauses[0]["why"] and "edge-02 failed" in pauses[1]["why"]
    assert [r["after"] for r in doc["resumes"]] == ["paused", "paused"]
    assert doc["resumes"][1]["retry_failed"] is True
    assert [(f["unit"], f["phase"]) for f in doc["failures"]] == [("edge-02", "edges")]
    assert {r["unit"] for r in doc["retries"]} == {"esx-02", "edge-02"}

    moves = [(m["vm"], m["from"], m["to"], m["outcome"]) for m in doc["vmotions"]]
    assert moves == [("pks-worker-3", "esx-03", "esx-04", "done"),
                     ("ops-manager", "esx-04", "esx-03", "done"),
                     ("pks-worker-3", "esx-04", "esx-03", "done")]
    assert all(m["end_s"] > m["start_s"] for m in doc["vmotions"])
    assert {d["host"]: d["vms"] for d in doc["drs_evacuations"]} == {
        "esx-01": ["pks-master-1", "pks-worker-1"], "esx-02": ["pks-worker-2"]}
    assert doc["acknowledged"] == ["edge-connectivity-degraded"]


def test_markdown_report_renders_on_github(eventful: Path) -> None:
    """Markdown: a mermaid gantt with a planned and an actual bar per unit, tables of
    phases, units, pauses (with who asked), vMotions and findings."""
    text = report(eventful, "markdown")
    chart = re.search(r"```mermaid\n(.*?)```", text, re.S)
    assert chart is not None
    lines = chart.group(1).splitlines()
    assert lines[0] == "gantt" and "    dateFormat X" in lines
    for unit in UNITS:
        assert any(line.strip().startswith(f"{unit} planned :") for line in lines)
        assert any(line.strip().startswith(f"{unit} actual :done,") for line in lines)
    ids = re.findall(r":(?:[a-z]+, )*(t\d+),", chart.group(1))
    assert len(ids) == len(set(ids)) == 2 * (len(UNITS) + 4)
    for heading in ("## Phases", "## Units", "## Pauses", "## vMotions", "## Failures",
                    "## Pre-check findings"):
        assert heading in text
    assert "| pause\\_after\\_each\\_group |" in text
    assert "| pks-worker-3 | esx-03 | esx-04 |" in text
    # every table row has as many cells as its header
    for block in re.findall(r"(?m)(^\|.*\|\n)+", text):
        widths = {len(re.split(r"(?<!\\)\|", row)) for row in block.splitlines()}
        assert len(widths) == 1, block


def _chromium() -> str:
    """The headless Chromium binary; the test fails (never skips) under CI without it."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is missing: scripts/test installs Debian's chromium package")
        pytest.skip("chromium not installed (apt-get install -y chromium)")
    return found


def _browse(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}",
            *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)


def png_pixels(data: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and the unfiltered rows of an 8-bit RGB(A) PNG (no PIL needed)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", header[:10])
    assert depth == 8 and colour in (2, 6), (depth, colour)
    bpp = 3 if colour == 2 else 4
    raw, stride, rows = zlib.decompress(idat), width * bpp, []
    previous = bytearray(stride)
    for y in range(height):
        line = raw[y * (stride + 1):(y + 1) * (stride + 1)]
        kind, row = line[0], bytearray(line[1:])
        for x in range(stride):
            left = row[x - bpp] if x >= bpp else 0
            up, corner = previous[x], previous[x - bpp] if x >= bpp else 0
            if kind == 1:
                row[x] = (row[x] + left) & 255
            elif kind == 2:
                row[x] = (row[x] + up) & 255
            elif kind == 3:
                row[x] = (row[x] + (left + up) // 2) & 255
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                best = left if pa <= pb and pa <= pc else up if pb <= pc else corner
                row[x] = (row[x] + best) & 255
        rows.append(bytes(row))
        previous = row
    return width, height, [bytes(r[i:i + 3]) for r in rows for i in range(0, stride, bpp)]


def test_html_report_renders_in_headless_chromium(eventful: Path, tmp_path: Path) -> None:
    """`report -o FILE` writes one self-contained HTML page (no script, nothing fetched);
    Chromium renders it to a screenshot that is not blank and shows the Gantt's colours,
    and its DOM holds every unit, the pauses and the vMotions."""
    page = tmp_path / "report.html"
    proc = nsxt("report", "--state-dir", eventful, "-o", page)
    assert proc.returncode == 0 and proc.stdout == "", proc.stderr
    text = page.read_text(encoding="utf-8")
    assert "<script" not in text.lower() and "<svg" in text
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", text)
    assert "@import" not in text and "url(" not in text

    binary = _chromium()
    shot = tmp_path / "shot.png"
    shown = _browse(binary, tmp_path / "profile", f"--screenshot={shot}",
                    "--window-size=1200,900", page.as_uri())
    assert shot.is_file(), shown.stderr
    width, height, pixels = png_pixels(shot.read_bytes())
    assert (width, height) == (1200, 900)
    colours = set(pixels)
    assert len(colours) > 20, "the screenshot is (nearly) blank"
    assert bytes((0x2e, 0x7d, 0x32)) in colours  # the green of upgraded units' bars
    assert bytes((0xb0, 0xb0, 0xb0)) in colours  # the grey of planned bars
    white = sum(1 for p in pixels if p == b"\xff\xff\xff")
    assert white < 0.95 * len(pixels)

    dom = _browse(binary, tmp_path / "profile", "--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr
    for unit in UNITS:
        assert f">{unit}</text>" in dom.stdout  # a Gantt row
        assert f"<td>{unit}</td>" in dom.stdout  # a table row
    assert "pause_after_each_group" in dom.stdout and "ops-manager" in dom.stdout


# -- the pure core: the chronicle of a journal ----------------------------------------------


def _plan() -> dict[str, Any]:
    return {"name": "p", "source_version": "2.1.0.0", "target_version": "2.3.0.0",
            "estimated_duration_s": 100, "findings": [],
            "phases": [{"name": "hosts", "estimated_start_s": 0, "estimated_duration_s": 100,
                        "groups": [{"name": "g", "units": ["h1"]}]}],
            "schedule": [{"phase": "hosts", "unit": "h1", "op": "upgrade", "start": 0,
                          "end": 100}]}


def _notice(kind: str, message: str, unit: str = "") -> tuple[str, float, dict[str, Any]]:
    return ("action", 0.0, {"type": "Notice", "kind": kind, "message": message, "unit": unit})


def test_chronicle_names_who_asked_and_sees_interruptions() -> None:
    """A Ctrl-C pause is the operator's; a resume of a run that never settled follows an
    interruption; a run that stopped without settling and without a live runner reads
    as paused (interrupted), with a live one as running; an abort record wins."""
    records = [
        ("event", 0.0, {"type": "Begin", "at": 0.0}),
        _notice("phase_started", "hosts started"),
        ("action", 0.0, {"type": "Start", "op": "upgrade", "unit": "h1", "attempt": 1}),
        ("event", 10.0, {"type": "PauseRequested", "at": 10.0, "reason": "SIGINT received"}),
        ("action", 10.0, {"type": "Notice", "kind": "stopping", "message": "SIGINT received",
                          "unit": ""}),
        ("event", 40.0, {"type": "Polled", "at": 40.0, "op": "upgrade", "unit": "h1",
                         "state": "done"}),
        ("action", 40.0, {"type": "Notice", "kind": "paused", "message": "SIGINT received",
                          "unit": ""}),
        ("event", 50.0, {"type": "Resumed", "at": 50.0, "retry_failed": False, "skip": []}),
        ("event", 60.0, {"type": "Resumed", "at": 60.0, "retry_failed": False, "skip": []}),
    ]
    doc = chronicle(records, _plan(), live=False)
    assert [(p["by"], p["outcome"]) for p in doc["pauses"]] == [
        ("operator (Ctrl-C)", "paused"), ("runner stopped", "interrupted"),
        ("runner stopped", "interrupted")]
    assert doc["pauses"][0]["paused_at_s"] == 40.0 and doc["pauses"][0]["resumed_at_s"] == 50
    assert [r["after"] for r in doc["resumes"]] == ["paused", "interrupted"]
    assert doc["state"] == "paused" and doc["interrupted"] is True
    assert doc["units"][0]["operations"][0]["end_s"] == 40.0
    assert chronicle(records, _plan(), live=True)["state"] == "running"
    aborted = chronicle(records, _plan(), aborted={"reason": "x"})
    assert aborted["state"] == "aborted"


def test_renderers_escape_names_from_the_files() -> None:
    """Names from the inventory cannot break out of a table cell, the HTML or the chart."""
    records = [("event", 0.0, {"type": "Begin", "at": 0.0})]
    plan = _plan()
    evil = "h1|<b>x</b>`"
    plan["phases"][0]["groups"][0]["units"] = [evil]
    plan["schedule"][0]["unit"] = evil
    plan["name"] = "p <script>alert(1)</script>"
    doc = chronicle(records, plan)
    page = report_to_html(doc)
    assert "<script>" not in page and "<b>x</b>" not in page
    assert "h1|&lt;b&gt;x&lt;/b&gt;`" in page
    markdown = report_to_markdown(doc)
    assert "h1\\|&lt;b&gt;x&lt;/b&gt;\\`" in markdown and "<b>" not in markdown


def test_report_of_a_skipped_unit_and_an_aborted_run(tmp_path: Path) -> None:
    """`resume --skip` shows as a skip by the operator and the unit's outcome; after
    `abort` the report says aborted, with the reason."""
    books = copy_playbooks(tmp_path)
    inventory = books / "lab-inventory.yaml"
    inventory.write_text(inventory.read_text(encoding="utf-8")
                         + "faults:\n  - {unit: edge-02, op: upgrade, kind: fail}\n",
                         encoding="utf-8")
    state_dir = tmp_path / "state"
    assert nsxt("run", books / LAB.name, "--yes", "--state-dir", state_dir).returncode == 3
    skipped = nsxt("resume", "--state-dir", state_dir, "--skip", "edge-02")
    assert skipped.returncode == 3  # the post-check flags edge-02 at its old version
    doc = json.loads(report(state_dir, "json"))
    assert doc["state"] == "paused"
    assert doc["skips"] == [{"unit": "edge-02", "at_s": doc["skips"][0]["at_s"],
                             "by": "operator (resume --skip)"}]
    units = {u["id"]: u for u in doc["units"]}
    assert units["edge-02"]["outcome"] == "skipped"
    assert units["ctrl-01"]["outcome"] == "upgraded"
    assert "| edge-02 | operator (resume --skip) |" in report(state_dir, "markdown")
    assert nsxt("abort", "--state-dir", state_dir, "--reason", "RMA of edge-02").returncode == 0
    aborted = json.loads(report(state_dir, "json"))
    assert aborted["state"] == "aborted" and aborted["aborted"]["reason"] == "RMA of edge-02"
    assert "RMA of edge-02" in report(state_dir, "html")
    assert "**Aborted:** RMA of edge-02" in report(state_dir, "markdown")
