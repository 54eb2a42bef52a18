"""The confirmation before a run starts, answered at a real terminal (a pty).

`run` asks only when stdin is a terminal; a "no", Ctrl-C or the end of input at the
question must end the command with one line saying nothing was started, exit 1, no
state directory and no click "Aborted!".
"""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.run_support import ENV, LAB, command, copy_playbooks

QUESTION = b"Start the upgrade? There is no rollback in NSX-T 2.x [y/N]: "


def _until_asked(proc: subprocess.Popen[bytes], deadline_s: float = 120.0) -> bytes:
    """What the run printed on stdout until it asked its question."""
    assert proc.stdout is not None
    seen = b""
    end = time.monotonic() + deadline_s
    while QUESTION not in seen:
        assert time.monotonic() < end, seen
        ready, _, _ = select.select([proc.stdout], [], [], 1.0)
        if ready:
            chunk = os.read(proc.stdout.fileno(), 4096)
            assert chunk, (seen, proc.poll())
            seen += chunk
    return seen


def _reading_stdin(pid: int, deadline_s: float = 60.0) -> None:
    """Wait until ``pid`` is blocked reading its stdin (Linux: ``/proc/PID/syscall`` says
    ``read`` on fd 0).  A SIGINT sent between the prompt and that read is only handled
    once the read returns, so the test sends it when the process truly waits, as a
    person's Ctrl-C would."""
    end = time.monotonic() + deadline_s
    while True:
        fields = Path(f"/proc/{pid}/syscall").read_text().split()
        if fields[:2] == ["0", "0x0"]:
            return
        assert time.monotonic() < end, fields
        time.sleep(0.01)


@pytest.mark.parametrize("answer", ["n", "ctrl-c", "end of input"])
def test_a_declined_start_is_one_line_and_writes_nothing(tmp_path: Path, answer: str) -> None:
    books = copy_playbooks(tmp_path)
    state_dir = tmp_path / "state"
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(command("run", books / LAB.name, "--state-dir", state_dir),
                                stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=ENV, cwd=tmp_path)
        os.close(slave)
        slave = -1
        _until_asked(proc)
        if answer == "n":
            os.write(master, b"n\n")
        elif answer == "ctrl-c":
            _reading_stdin(proc.pid)
            proc.send_signal(signal.SIGINT)
        else:
            os.write(master, b"\x04")  # ^D: the terminal's end of input
        _, err = proc.communicate(timeout=60)
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)
    text = err.decode()
    assert proc.returncode == 1, text
    assert "Aborted!" not in text and "Traceback" not in text
    assert text.strip().splitlines()[-1] == ("not started: the upgrade was not confirmed; "
                                             "nothing was written or changed")
    assert not state_dir.exists()
