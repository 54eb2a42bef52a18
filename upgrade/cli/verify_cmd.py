"""``nsxt-upgrade verify``: replay a run's whole journal and check every snapshot in it."""

from __future__ import annotations

from pathlib import Path

import click

from upgrade.cli.pipes import quiet_on_closed_stdout
from upgrade.shell.dirstate import Command, locate


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="The run's state directory (default: the only run under ./.nsxt-upgrade).")
@quiet_on_closed_stdout
def verify(state_dir: Path | None) -> None:
    """Replay a run's whole history and check that each stored snapshot equals it.

    `status` and `resume` start from the latest snapshot of the engine's state
    and read only the records after it; this replays every record from the
    first, checking that the engine issues each recorded action again and that
    every snapshot equals the state replayed up to its record. Read-only; safe
    beside a live runner. Exit 0 when all agree; exit 1 naming the first record
    or snapshot that differs (a DeterminismError).
    """
    from upgrade.shell.journal import Journal
    from upgrade.shell.replay import verify as verify_journal
    from upgrade.shell.start_record import load_run, recorded_engine

    found = locate(state_dir, Command.VERIFY)
    with Journal.open_readonly(found) as journal:
        engine = recorded_engine(load_run(found, journal), journal)
        records, checked = verify_journal(journal, engine)
    click.echo(f"verified {records} records and {checked} snapshots in {found}: the replayed "
               "history issues every recorded action and matches every snapshot")
