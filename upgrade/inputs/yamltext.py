"""The bytes of an input file as text: a regular UTF-8 file, small enough, YAML-printable.

What :mod:`upgrade.inputs.yamlread` parses comes from here, so a device, a multi-GB file,
UTF-16, a NUL byte or a character YAML does not allow is refused before the parser sees
it, with the line and column it is at.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from upgrade.errors import FileError

#: the largest file read (a 100,000-host inventory is about 6 MiB)
MAX_FILE_BYTES = 16 * 1024 * 1024
#: characters YAML 1.2 does not allow in a stream (c-printable is everything else)
_NOT_PRINTABLE = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ud800-\udfff\ufffe\uffff]"
)


def read_text(path: Path) -> str:
    """The file's text: a regular UTF-8 file of at most :data:`MAX_FILE_BYTES`."""
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            kind = "a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file"
            raise FileError(path, 1, 1, f"cannot read it: {kind} (give a YAML file)")
        if info.st_size > MAX_FILE_BYTES:
            raise FileError(path, 1, 1, _too_big(info.st_size))
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as stream:
            data = stream.read(MAX_FILE_BYTES + 1)  # it may have grown since stat()
    except FileNotFoundError:
        raise FileError(path, 1, 1, "file not found") from None
    except OSError as exc:
        raise FileError(path, 1, 1, f"cannot read file: {exc.strerror or exc}") from None
    if len(data) > MAX_FILE_BYTES:
        raise FileError(path, 1, 1, _too_big(len(data)))
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise FileError(path, 1, 1, "the file is UTF-16 text; save it as UTF-8")
    nul = data.find(b"\x00")
    if nul >= 0:
        line, column = _byte_position(data, nul)
        raise FileError(path, line, column,
                        "NUL byte: this is a binary file, not YAML text (saved as UTF-8)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, column = _byte_position(data, exc.start)
        raise FileError(path, line, column,
                        f"byte 0x{data[exc.start]:02x} is not UTF-8 text; save the file as "
                        "UTF-8") from None
    text = text.removeprefix("\ufeff")
    bad = _NOT_PRINTABLE.search(text)
    if bad is not None:
        line, column = _char_position(text, bad.start())
        raise FileError(path, line, column,
                        f"character {codepoint(bad.group())} is not allowed in YAML text")
    return text


def _too_big(size: int) -> str:
    return (f"file is {size / 2**20:.1f} MiB, more than the {MAX_FILE_BYTES // 2**20} MiB "
            "an input file may have (a 100,000-host inventory is about 6 MiB)")


def _byte_position(data: bytes, index: int) -> tuple[int, int]:
    start = data.rfind(b"\n", 0, index) + 1
    column = len(data[start:index].decode("utf-8", errors="replace")) + 1
    return data.count(b"\n", 0, index) + 1, column


def _char_position(text: str, index: int) -> tuple[int, int]:
    return text.count("\n", 0, index) + 1, index - (text.rfind("\n", 0, index) + 1) + 1


def codepoint(char: str) -> str:
    """``U+XXXX``: how a character that may not be shown is named in messages."""
    return f"U+{ord(char):04X}"
