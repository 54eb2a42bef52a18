"""Credentials are read in one place (:mod:`upgrade.adapters.factory`): the adapters' and
the emulator's, from the same variables, and never repeated in a message."""

from __future__ import annotations

import pytest

from upgrade.adapters.factory import credentials, emulator_credentials
from upgrade.errors import InputError


def test_the_emulator_accepts_what_the_adapter_logs_in_with(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NSXT_USERNAME", "admin")
    monkeypatch.setenv("NSXT_PASSWORD", "s3cret-pw")
    assert emulator_credentials() == credentials("NSXT") == ("admin", "s3cret-pw")


@pytest.mark.parametrize(("user", "password"), [("", "s3cret-pw"), ("admin", ""), (None, None)])
def test_the_emulator_needs_both_not_empty(monkeypatch: pytest.MonkeyPatch, user: str | None,
                                           password: str | None) -> None:
    for name, value in (("NSXT_USERNAME", user), ("NSXT_PASSWORD", password)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    with pytest.raises(InputError) as caught:
        emulator_credentials()
    assert str(caught.value) == ("set NSXT_USERNAME and NSXT_PASSWORD: the emulator accepts "
                                 "those credentials")
    assert "s3cret-pw" not in str(caught.value)

