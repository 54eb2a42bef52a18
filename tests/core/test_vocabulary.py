"""The engine's words are enums that journal as their plain strings: a journal written
with them is byte-identical to one written with strings, and reads back as the enums."""

from __future__ import annotations

import json

import pytest

from upgrade.core.engine.messages import (
    Notice,
    NoticeKind,
    OpState,
    Polled,
    decode,
    encode,
)
from upgrade.core.engine.outcome import OpStatus
from upgrade.core.model import Op


def test_messages_journal_as_strings_and_decode_as_enums() -> None:
    polled = Polled(5.0, Op.UPGRADE, "esx-01", OpState.RUNNING, "50%")
    notice = Notice(NoticeKind.UNIT_DONE, "esx-01 upgraded", "esx-01")
    for message, field, plain in ((polled, "state", "running"), (notice, "kind", "unit_done")):
        data = encode(message)
        text = json.dumps(data, sort_keys=True)
        assert f'"{field}": "{plain}"' in text
        back = decode(json.loads(text))
        assert back == message
        assert type(getattr(back, field)) is type(getattr(message, field))


def test_an_op_status_takes_a_state_member_only() -> None:
    """A word is read into a member where the target's answer is read (the adapters'
    StatusWords tables); a plain string, even the member's own value, is refused."""
    assert OpStatus(OpState.DONE).state is OpState.DONE
    assert OpStatus(OpState.FAILED, "x") == OpStatus(OpState.FAILED, "x")
    for word in ("done", "finished", "IN_PROGRESS", None):
        with pytest.raises(TypeError, match="OpStatus needs an OpState member"):
            OpStatus(word)  # type: ignore[arg-type]
