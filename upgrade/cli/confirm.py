"""The question asked before an upgrade starts, and what a "no" says."""

from __future__ import annotations

import sys

import click


def confirm_start(question: str, what: str, *, err: bool = False) -> None:
    """Ask ``question``; unless the operator answers yes, end the command (exit 1).

    A "no", Ctrl-C or the end of input at the prompt all mean the same: nothing was
    started, and the one line printed says so (instead of click's bare "Aborted!").
    """
    try:
        yes = click.confirm(question, err=err)
    except click.Abort:  # Ctrl-C or end of input: end the prompt's line first
        click.echo(err=True)
        yes = False
    if not yes:
        click.echo(f"not started: {what} was not confirmed; nothing was written or changed",
                   err=True)
        sys.exit(1)
